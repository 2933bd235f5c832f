// Package labtest lets Go tests, Ginkgo specs or plain `go test` ones, work on a lab that
// labctl runs: attach to it (or bring it up first), then run commands, read results and upload
// files at any level of it, the VM or any container of its spec, over one pinned SSH
// connection. labctl's own e2e suite is written on it.
package labtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/agent"
	"github.com/labctl/labctl/provision/remote"
)

// Options say which lab to work on, as labctl finds it: File, else Preset, else
// Root/lab.yaml, else the default preset.
type Options struct {
	File, Preset string
	// Root is the directory whose tmp/ holds the lab's state (where labctl ran); default ".".
	Root string
	// Labctl is the labctl binary Up and Destroy run (default: `labctl` on PATH).
	Labctl string
	// Log receives the connection's log and the output of labctl; default: discarded.
	Log io.Writer
	// InsecureIgnoreHostKey skips host-key pinning (throwaway labs only).
	InsecureIgnoreHostKey bool
}

func (o Options) root() string {
	if o.Root == "" {
		return "."
	}
	return o.Root
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Spec is the lab spec the options name.
func (o Options) Spec() (*spec.Spec, error) { return spec.Resolve(o.File, o.Preset, o.root()) }

// Lab is a running lab, attached.
type Lab struct {
	Spec *spec.Spec
	Dir  *lab.Lab
	// Facts are what the VM is (kernel, LXC version, cgroup, AppArmor, ...).
	Facts   provision.Facts
	comm    *remote.Comm
	vm      remote.Target
	targets map[string]*remote.Container
	close   []func() error
	opts    Options
}

// Up brings the lab up with `labctl up` (idempotent: a lab that is up is checked).
func Up(ctx context.Context, o Options) error { return o.labctl(ctx, "up") }

// Reset brings the lab back to its ready snapshot with `labctl reset`.
func Reset(ctx context.Context, o Options) error { return o.labctl(ctx, "reset") }

// Destroy removes the lab with `labctl destroy`.
func Destroy(ctx context.Context, o Options) error { return o.labctl(ctx, "destroy") }

func (o Options) labctl(ctx context.Context, verb string) error {
	bin := o.Labctl
	if bin == "" {
		bin = "labctl"
	}
	args := []string{verb}
	switch {
	case o.File != "":
		args = append(args, "-f", o.File)
	case o.Preset != "":
		args = append(args, "--preset", o.Preset)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = o.root()
	cmd.Stdout, cmd.Stderr = o.log(), o.log()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("labctl %s: %w (see the log)", verb, err)
	}
	return nil
}

// Attach connects to the running lab the options name. It fails, saying what to do, when the
// lab's VM is not running.
func Attach(ctx context.Context, o Options) (*Lab, error) {
	s, err := o.Spec()
	if err != nil {
		return nil, err
	}
	d, err := lab.Open(o.root(), s)
	if err != nil {
		return nil, err
	}
	l := &Lab{Spec: s, Dir: d, opts: o}
	v, closeV, err := d.Vagrant(nil)
	if err != nil {
		return nil, err
	}
	l.close = append(l.close, closeV)
	state, err := d.VMState(ctx, v)
	if err != nil {
		l.Close()
		return nil, err
	}
	if state != "running" {
		l.Close()
		return nil, fmt.Errorf("lab %s is %s, not running: bring it up with `labctl up` (or labtest.Up)", s.Name, state)
	}
	if o.Labctl != "" && os.Getenv("LABCTL_AGENT") != "0" {
		// Through the lab's agent, as labctl's own commands: every level one message away.
		c, err := o.agent(ctx, d)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.close = append(l.close, c.Close)
		l.vm = &agent.VM{Client: c, Log: o.log()}
	} else if err := l.connectSSH(ctx, v); err != nil {
		l.Close()
		return nil, err
	}
	if l.Facts, err = provision.GatherFacts(ctx, l.vm, s.User); err != nil {
		l.Close()
		return nil, err
	}
	l.targets = provision.Targets(s, l.vm, l.Facts)
	return l, nil
}

// connectSSH opens the lab's own pinned SSH connection (for uploads, or without an agent).
func (l *Lab) connectSSH(ctx context.Context, v *vagrant.Driver) error {
	comm, err := provision.Connect(ctx, l.Dir, v, provision.ConnectOptions{Log: l.opts.log(), InsecureIgnoreHostKey: l.opts.InsecureIgnoreHostKey})
	if err != nil {
		return err
	}
	l.comm = comm
	l.close = append(l.close, comm.Close)
	if l.vm == nil {
		l.vm = &remote.VM{Conn: comm}
	}
	return nil
}

// agent connects to the lab's agent, started from the Labctl binary when none runs.
func (o Options) agent(ctx context.Context, d *lab.Lab) (*agent.Client, error) {
	flags := agent.LabFlags{File: o.File, Preset: o.Preset, Insecure: o.InsecureIgnoreHostKey}
	return agent.Start(ctx, d.Path("agent.sock"), o.Labctl, flags, o.root(), d.Path("logs", "agent.log"))
}

// Close ends the connection.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.close) - 1; i >= 0; i-- {
		errs = append(errs, l.close[i]())
	}
	l.close = nil
	return errors.Join(errs...)
}

// Host is the VM level's name for Target.
const Host = "host"

// Target returns where commands run: Host (the VM, as the lab user) or a container's name.
func (l *Lab) Target(name string) (remote.Target, error) {
	if name == Host || name == "vm" {
		return l.vm, nil
	}
	if t, ok := l.targets[name]; ok {
		return t, nil
	}
	var names []string
	for _, c := range l.Spec.Containers {
		names = append(names, c.Name)
	}
	return nil, fmt.Errorf("no level %q in lab %s: use %s or one of %s", name, l.Spec.Name, Host, strings.Join(names, ", "))
}

// Run runs a shell command line at a level (as root in a container; on the VM as the lab
// user, as root with sudo). A non-zero exit is in the Result, not the error.
func (l *Lab) Run(ctx context.Context, level, line string, sudo bool) (remote.Result, error) {
	t, err := l.Target(level)
	if err != nil {
		return remote.Result{ExitCode: -1}, err
	}
	return t.Run(ctx, remote.Cmd{Line: line, Sudo: sudo})
}

// Sh runs a command line at a level and returns its trimmed standard output; a non-zero exit
// is an error that carries the command's output.
func (l *Lab) Sh(ctx context.Context, level, line string) (string, error) {
	t, err := l.Target(level)
	if err != nil {
		return "", err
	}
	return remote.Sh(ctx, t, false, line)
}

// Upload copies a local file to dest at a level (a path inside that container, or on the VM
// for Host, where it is owned by the lab user), and checks its sha256 there.
func (l *Lab) Upload(ctx context.Context, level, local, dest string) error {
	data, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	t, err := l.Target(level)
	if err != nil {
		return err
	}
	line := remote.Shf("cat > %s && sha256sum %s", dest, dest)
	r, err := remote.Must(ctx, t, remote.Cmd{Line: line, Stdin: bytes.NewReader(data)})
	if err != nil {
		return err
	}
	if got := strings.Fields(r.Stdout); len(got) == 0 || got[0] != want {
		return fmt.Errorf("upload of %s to %s:%s: sha256 %v there, %s here", local, level, dest, got, want)
	}
	return nil
}

// Provisioner returns the lab's provisioner (to check or re-run the steps from a test);
// local images come from labctl's cache (built when missing).
func (l *Lab) Provisioner(ctx context.Context, opts provision.Options) (*provision.Provisioner, error) {
	if opts.Image == nil {
		opts.Image = build.LocalImages(l.Spec, l.opts.log(), l.opts.log())
	}
	return provision.New(ctx, l.Dir, l.vm, l, opts)
}

// UploadFile copies a file to the VM over the lab's SSH connection, opened on first use.
func (l *Lab) UploadFile(ctx context.Context, local, dest string, mode os.FileMode, progress io.Writer) (remote.UploadResult, error) {
	if l.comm == nil {
		v, closeV, err := l.Dir.Vagrant(nil)
		if err != nil {
			return remote.UploadResult{}, err
		}
		defer closeV()
		if err := l.connectSSH(ctx, v); err != nil {
			return remote.UploadResult{}, err
		}
	}
	return l.comm.UploadFile(ctx, local, dest, mode, progress)
}

// VM is the lab's VM as a target (the lab user; sudo for root).
func (l *Lab) VM() remote.Target { return l.vm }
