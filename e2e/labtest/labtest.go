// Package labtest lets Go tests, Ginkgo specs or plain `go test` ones, work on a lab that
// labctl runs: attach to it (or bring it up first), then run commands, read results and upload
// files at any level of it, the VM or any container of its spec, through the lab's one
// connection (the lab's agent, or one pinned SSH connection). labctl's own e2e suite is
// written on it.
package labtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// Options say which lab to work on, as labctl finds it: File, else Preset, else
// Root/lab.yaml, else the default preset.
type Options struct {
	File, Preset string
	// Root is the directory whose tmp/ holds the lab's state (where labctl ran); default ".".
	Root string
	// StateDir, when set, holds the labs' directories instead of Root/tmp (labctl --state-dir).
	StateDir string
	// Libvirt, when set, overrides the spec's libvirt setting (labctl --libvirt).
	Libvirt string
	// Labctl is the labctl binary Up and Destroy run (default: `labctl` on PATH); Attach
	// reaches the lab through the lab's agent, started from it, when it is given.
	Labctl string
	// Log receives the connection's log and the output of labctl; default: discarded.
	Log io.Writer
	// InsecureIgnoreHostKey skips host-key pinning (throwaway labs only).
	InsecureIgnoreHostKey bool
}

func (o Options) source() spec.Source {
	return spec.Source{File: o.File, Preset: o.Preset, Root: o.Root}
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Spec is the lab spec the options name.
func (o Options) Spec() (*spec.Spec, error) { return o.source().Resolve() }

// ReportDir is where the lab's reports go: tmp/<lab>/reports under Root.
func (o Options) ReportDir() (string, error) {
	s, err := o.Spec()
	if err != nil {
		return "", err
	}
	return filepath.Join(o.source().Labs(), s.Name, labdir.Reports), nil
}

// Lab is a running lab, attached.
type Lab struct {
	Spec *spec.Spec
	// Dir is the lab's directory (tmp/<name>/ under Root), where plain Vagrant works.
	Dir string
	// Facts are what the VM is (kernel, LXC version, cgroup, AppArmor, ...).
	Facts provision.Facts
	conn  *lab.Conn
}

// Up brings the lab up with `labctl up` (idempotent: a lab that is up is checked).
func Up(ctx context.Context, o Options) error { return o.verb(ctx, "up") }

// UpKeepOnFailure is Up that keeps a VM it created when a later phase fails
// (`labctl up --keep-on-failure`), for inspection.
func UpKeepOnFailure(ctx context.Context, o Options) error {
	return o.verb(ctx, "up", "--keep-on-failure")
}

// Reset brings the lab back to its ready snapshot with `labctl reset`.
func Reset(ctx context.Context, o Options) error { return o.verb(ctx, "reset") }

// Destroy removes the lab with `labctl destroy`.
func Destroy(ctx context.Context, o Options) error { return o.verb(ctx, "destroy") }

func (o Options) verb(ctx context.Context, verb string, flags ...string) error {
	if _, err := Labctl(ctx, o, append([]string{verb}, flags...)...); err != nil {
		return fmt.Errorf("labctl %s: %w (see the log)", verb, err)
	}
	return nil
}

// Labctl runs `labctl ARGS...` on the lab the options name (Labctl, else `labctl` on PATH, in
// Root) and returns its standard output; its standard error goes to the log.
func Labctl(ctx context.Context, o Options, args ...string) (string, error) {
	bin := o.Labctl
	if bin == "" {
		bin = "labctl"
	}
	cmd := exec.CommandContext(ctx, bin, append(args, o.source().Args()...)...)
	cmd.Dir = o.source().Dir()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, o.log()), o.log()
	err := cmd.Run()
	return out.String(), err
}

// Attach connects to the running lab the options name. It fails, saying what to do, when the
// lab's VM is not running.
func Attach(ctx context.Context, o Options) (*Lab, error) {
	d, err := lab.Open(o.source())
	if err != nil {
		return nil, err
	}
	state, err := d.VMState(ctx)
	if err != nil {
		return nil, err
	}
	if state != "running" {
		return nil, fmt.Errorf("lab %s is %s, not running: bring it up with `labctl up` (or labtest.Up)", d.Spec.Name, state)
	}
	c, err := d.Connect(ctx, lab.ConnectOptions{Agent: o.Labctl, Insecure: o.InsecureIgnoreHostKey, Log: o.log()})
	if err != nil {
		return nil, err
	}
	l := &Lab{Spec: d.Spec, Dir: d.Dir, conn: c}
	if l.Facts, err = c.Facts(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return l, nil
}

// Close ends the connection.
func (l *Lab) Close() error { return l.conn.Close() }

// Host is the VM level's name for Target.
const Host = lab.Host

// Target returns where commands run: Host (the VM, as the lab user) or a container's name.
func (l *Lab) Target(name string) (remote.Target, error) {
	return l.conn.Target(context.Background(), name)
}

// Run runs a shell command line at a level (as root in a container; on the VM as the lab
// user, as root with sudo). A non-zero exit is in the Result, not the error.
func (l *Lab) Run(ctx context.Context, level, line string, sudo bool) (remote.Result, error) {
	t, err := l.conn.Target(ctx, level)
	if err != nil {
		return remote.Result{ExitCode: -1}, err
	}
	return t.Run(ctx, remote.Cmd{Line: line, Sudo: sudo})
}

// Sh runs a command line at a level and returns its trimmed standard output; a non-zero exit
// is an error that carries the command's output.
func (l *Lab) Sh(ctx context.Context, level, line string) (string, error) {
	t, err := l.conn.Target(ctx, level)
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
	t, err := l.conn.Target(ctx, level)
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
	return l.conn.Provisioner(ctx, opts)
}

// VM is the lab's VM as a target (the lab user; sudo for root).
func (l *Lab) VM() remote.Target { return l.conn.VM() }
