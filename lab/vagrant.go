package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Vagrant runs vagrant for one lab: VAGRANT_CWD is the lab directory, VAGRANT_HOME labctl's
// cache. Every output line goes to Log (tmp/<lab>/logs/vagrant.log); the "==>" lines also go
// to Progress, so the terminal shows what Vagrant is doing without its progress bars.
type Vagrant struct {
	Dir      string
	Log      io.Writer
	Progress io.Writer
	// Exec runs the command; tests replace it with recorded outputs.
	Exec func(ctx context.Context, env []string, args ...string) *exec.Cmd
}

// NewVagrant returns the driver of lab l, logging to tmp/<lab>/logs/vagrant.log.
func NewVagrant(l *Lab, progress io.Writer) (*Vagrant, func() error, error) {
	f, err := os.OpenFile(l.Path("logs", "vagrant.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return &Vagrant{Dir: l.Dir, Log: f, Progress: progress}, f.Close, nil
}

// VagrantError is a failed vagrant command with the text Vagrant printed about it.
type VagrantError struct {
	Args   []string
	Err    error
	Output string
}

func (e *VagrantError) Error() string {
	return fmt.Sprintf("vagrant %s failed (%v):\n%s\n(full output in tmp/<lab>/logs/vagrant.log)", strings.Join(e.Args, " "), e.Err, e.Output)
}

func (v *Vagrant) command(ctx context.Context, args ...string) *exec.Cmd {
	env := append(os.Environ(), "VAGRANT_CWD="+v.Dir, "VAGRANT_HOME="+VagrantHome(),
		"VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1", "VAGRANT_DEFAULT_PROVIDER=libvirt")
	if v.Exec != nil {
		return v.Exec(ctx, env, args...)
	}
	cmd := exec.CommandContext(ctx, "vagrant", args...)
	cmd.Env = env
	cmd.Dir = v.Dir
	return cmd
}

// Run runs vagrant with args and returns its standard output.
func (v *Vagrant) Run(ctx context.Context, args ...string) (string, error) {
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
		return stdout.String(), &VagrantError{Args: args, Err: err, Output: lastLines(all.String(), 15)}
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

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Up creates or starts the VM.
func (v *Vagrant) Up(ctx context.Context, provider string) error {
	_, err := v.Run(ctx, "up", "--provider", provider, "--no-provision")
	return err
}

// SSHConfig returns `vagrant ssh-config`.
func (v *Vagrant) SSHConfig(ctx context.Context) (string, error) { return v.Run(ctx, "ssh-config") }

// Halt stops the VM.
func (v *Vagrant) Halt(ctx context.Context) error { _, err := v.Run(ctx, "halt"); return err }

// Destroy removes the VM and the disks Vagrant created for it.
func (v *Vagrant) Destroy(ctx context.Context) error {
	_, err := v.Run(ctx, "destroy", "-f")
	return err
}

// SnapshotSave saves a named snapshot of the VM.
func (v *Vagrant) SnapshotSave(ctx context.Context, name string) error {
	_, err := v.Run(ctx, "snapshot", "save", "--force", name)
	return err
}

// SnapshotRestore restores a named snapshot.
func (v *Vagrant) SnapshotRestore(ctx context.Context, name string) error {
	_, err := v.Run(ctx, "snapshot", "restore", "--no-provision", name)
	return err
}

// Status returns the VM's state as Vagrant names it: not_created, running, shutoff, ...
func (v *Vagrant) Status(ctx context.Context) (string, error) {
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
func (v *Vagrant) BoxAdd(ctx context.Context, name, file string) error {
	_, err := v.Run(ctx, "box", "add", "--force", "--name", name, file)
	return err
}

// BoxList lists the boxes as "name (provider, version)" lines.
func (v *Vagrant) BoxList(ctx context.Context) (string, error) { return v.Run(ctx, "box", "list") }

// Validate runs `vagrant validate` on the Vagrantfile in Dir.
func (v *Vagrant) Validate(ctx context.Context, extraEnv ...string) (string, error) {
	cmd := v.command(ctx, "validate")
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), &VagrantError{Args: []string{"validate"}, Err: err, Output: lastLines(string(out), 20)}
	}
	return string(out), nil
}
