// Package vagrant drives the vagrant command for one lab directory (VAGRANT_CWD) with labctl's
// VAGRANT_HOME: every line to the lab's log, the "==>" lines to the terminal, Vagrant's own
// text in errors. It also reads what Vagrant prints (machine state, ssh-config).
package vagrant

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/labctl/labctl/lab/host"
)

// Driver runs vagrant for one lab: VAGRANT_CWD is the lab directory, VAGRANT_HOME labctl's
// cache. Every output line goes to Log (tmp/<lab>/logs/vagrant.log); the "==>" lines also go
// to Progress, so the terminal shows what Vagrant is doing without its progress bars.
type Driver struct {
	Dir      string
	Log      io.Writer
	Progress io.Writer
	// Provider is Vagrant's name of the lab's provider (VAGRANT_DEFAULT_PROVIDER); empty:
	// Vagrant's own default.
	Provider string
	// Exec runs the command; tests replace it with recorded outputs.
	Exec func(ctx context.Context, env []string, args ...string) *exec.Cmd
}

// VagrantError is a failed vagrant command with the text Vagrant printed about it.
type VagrantError struct {
	Args   []string
	Err    error
	Output string
	// BootTimedOut says Vagrant gave up waiting for the guest's SSH (config.vm.boot_timeout):
	// the guest hung while booting, or its sshd never answered.
	BootTimedOut bool
}

// bootTimeoutText is how Vagrant says that the guest's SSH did not answer within its boot
// timeout (the vagrant gem's message vagrant.errors.boot_timeout, in templates/locales/en.yml).
const bootTimeoutText = "Timed out while waiting for the machine to boot"

// IsBootTimeout says whether err is a vagrant command that gave up waiting for the guest's
// SSH within the boot timeout.
func IsBootTimeout(err error) bool {
	var ve *VagrantError
	return errors.As(err, &ve) && ve.BootTimedOut
}

func (e *VagrantError) Error() string {
	return fmt.Sprintf("vagrant %s failed (%v):\n%s\n(full output in tmp/<lab>/logs/vagrant.log)", strings.Join(e.Args, " "), e.Err, e.Output)
}

func (v *Driver) command(ctx context.Context, args ...string) *exec.Cmd {
	env := append(os.Environ(), "VAGRANT_CWD="+v.Dir, "VAGRANT_HOME="+host.VagrantHome(),
		"VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1")
	if v.Provider != "" {
		env = append(env, "VAGRANT_DEFAULT_PROVIDER="+v.Provider)
	}
	if v.Exec != nil {
		return v.Exec(ctx, env, args...)
	}
	cmd := exec.CommandContext(ctx, "vagrant", args...)
	cmd.Env = env
	cmd.Dir = v.Dir
	return cmd
}

// Run runs vagrant with args and returns its standard output.
func (v *Driver) Run(ctx context.Context, args ...string) (string, error) {
	cmd := v.command(ctx, args...)
	var stdout, all bytes.Buffer
	var mu sync.Mutex
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(&stdout, pw)
	cmd.Stderr = pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sc.Split(scanLinesOrCR)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), " ")
			if strings.HasPrefix(strings.TrimSpace(line), "Progress:") || line == "" {
				continue
			}
			mu.Lock()
			all.WriteString(line + "\n")
			mu.Unlock()
			if v.Log != nil {
				fmt.Fprintln(v.Log, line)
			}
			if v.Progress != nil && strings.HasPrefix(line, "==> ") && !strings.Contains(line, " -- ") {
				fmt.Fprintln(v.Progress, "  vagrant"+strings.TrimPrefix(line, "==>"))
			}
		}
	}()
	if v.Log != nil {
		fmt.Fprintf(v.Log, "### vagrant %s\n", strings.Join(args, " "))
	}
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		text := all.String()
		return stdout.String(), &VagrantError{Args: args, Err: err, Output: host.LastLines(text, 15), BootTimedOut: strings.Contains(text, bootTimeoutText)}
	}
	return stdout.String(), nil
}

// scanLinesOrCR splits on \n and \r, so that progress bars become lines to drop.
func scanLinesOrCR(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Up creates or starts the VM with the driver's provider. keep is for a VM that existed before
// this `vagrant up` (its disks hold the user's lab): Vagrant then leaves it as a failure left
// it (its default is to destroy the VM on a failure; vagrant-libvirt 0.11.2 halts one that
// existed instead, which for a hung guest means a minute of ACPI shutdown first); the caller
// decides what happens to it.
func (v *Driver) Up(ctx context.Context, keep bool) error {
	args := []string{"up", "--provider", v.Provider, "--no-provision"}
	if keep {
		args = append(args, "--no-destroy-on-error")
	}
	_, err := v.Run(ctx, args...)
	return err
}

// SSHConfig returns `vagrant ssh-config`.
func (v *Driver) SSHConfig(ctx context.Context) (string, error) { return v.Run(ctx, "ssh-config") }

// Halt stops the VM.
func (v *Driver) Halt(ctx context.Context) error { _, err := v.Run(ctx, "halt"); return err }

// Destroy removes the VM and the disks Vagrant created for it.
func (v *Driver) Destroy(ctx context.Context) error {
	_, err := v.Run(ctx, "destroy", "-f")
	return err
}

// SnapshotSave saves a named snapshot of the VM.
func (v *Driver) SnapshotSave(ctx context.Context, name string) error {
	_, err := v.Run(ctx, "snapshot", "save", "--force", name)
	return err
}

// SnapshotRestore restores a named snapshot.
func (v *Driver) SnapshotRestore(ctx context.Context, name string) error {
	_, err := v.Run(ctx, "snapshot", "restore", "--no-provision", name)
	return err
}

// Status returns the VM's state as Vagrant names it: not_created, running, shutoff, ...
// An error means Vagrant could not tell (libvirt down, a broken Vagrantfile): it says
// nothing about the VM.
func (v *Driver) Status(ctx context.Context) (string, error) {
	out, err := v.Run(ctx, "status", "--machine-readable")
	if err != nil {
		return "", err
	}
	return ParseMachineState(out)
}

// ParseMachineState reads the state row of `vagrant status --machine-readable`.
func ParseMachineState(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, ",", 4)
		if len(f) == 4 && f[2] == "state" {
			return f[3], nil
		}
	}
	return "", fmt.Errorf("no state in `vagrant status --machine-readable` output")
}

// BoxAdd adds a box file under a name (replacing an older box of that name).
func (v *Driver) BoxAdd(ctx context.Context, name, file string) error {
	_, err := v.Run(ctx, "box", "add", "--force", "--name", name, file)
	return err
}

// BoxList lists the boxes as "name (provider, version)" lines.
func (v *Driver) BoxList(ctx context.Context) (string, error) { return v.Run(ctx, "box", "list") }

// Validate runs `vagrant validate` on the Vagrantfile in Dir.
func (v *Driver) Validate(ctx context.Context, extraEnv ...string) (string, error) {
	cmd := v.command(ctx, "validate")
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), &VagrantError{Args: []string{"validate"}, Err: err, Output: host.LastLines(string(out), 20)}
	}
	return string(out), nil
}
