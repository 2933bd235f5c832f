// Package lab is one lab on the host, from its spec to its levels: it owns the lab's directory
// tmp/<name>/ and the state labctl keeps there, its VM through the Vagrant driver and a
// Provider, the one connection that hands out the lab's levels (the lab's agent, or SSH), and
// its verbs (up, halt, reset, destroy) as ordered lists of actions. It joins the packages
// below it; what runs inside the guest is provision's.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// Lab is one lab on disk: its spec, its directory tmp/<name>/ and the state kept there.
type Lab struct {
	Spec *spec.Spec
	// Dir is tmp/<name>, absolute.
	Dir string
	// Source is how the lab was named (the agent is started with the same flags).
	Source spec.Source

	// st is state.json as this process last read or wrote it (state.go).
	mu sync.Mutex
	st State
	// prov is the lab's provider, resolved once (provider.go).
	prov Provider
}

// Open returns the lab the source names, under its root's tmp/<name>, creating the
// directories and reading its state. It refuses a tmp/, a lab directory or a logs/ that
// another user owns or every user may write to (run from /, tmp/ is /tmp), and a lab
// directory or logs/ that is a symlink: another user could plant a Vagrantfile there, which
// Vagrant runs, or symlinks for the state and the logs.
func Open(src spec.Source) (*Lab, error) {
	s, err := src.Resolve()
	if err != nil {
		return nil, err
	}
	return OpenSpec(src, s)
}

// OpenSpec is Open for a spec already resolved from src.
func OpenSpec(src spec.Source, s *spec.Spec) (*Lab, error) {
	tmp, err := filepath.Abs(src.Labs())
	if err != nil {
		return nil, err
	}
	if err := host.SafeDir(tmp, 0o755, true); err != nil {
		return nil, fmt.Errorf("lab %s: %w", s.Name, err)
	}
	abs := filepath.Join(tmp, s.Name)
	// The lab's directory and its logs are its owner's alone (0700, also made so when an older
	// labctl left them 0755): its state, Vagrantfile, console and logs say what runs in the VM,
	// and its agent's socket drives it.
	for _, d := range []string{abs, filepath.Join(abs, labdir.Logs)} {
		if err := host.PrivateDir(d); err != nil {
			return nil, fmt.Errorf("lab %s: %w", s.Name, err)
		}
	}
	l := &Lab{Spec: s, Dir: abs, Source: src}
	if l.st, err = readState(l.Path(labdir.State)); err != nil {
		return nil, err
	}
	return l, nil
}

// Path joins parts under the lab directory.
func (l *Lab) Path(parts ...string) string {
	return filepath.Join(append([]string{l.Dir}, parts...)...)
}

// Log is tmp/<lab>/logs/NAME.
func (l *Lab) Log(name string) string { return l.Path(labdir.Logs, name) }

// KnownHosts is the file where the VM's host key is pinned.
func (l *Lab) KnownHosts() string { return l.Path(labdir.KnownHosts) }

// LogDir is tmp/<lab>/logs.
func (l *Lab) LogDir() string { return l.Path(labdir.Logs) }

// ReportDir is tmp/<lab>/reports, where the e2e suite writes its JUnit and JSON reports.
func (l *Lab) ReportDir() string { return l.Path(labdir.Reports) }

// hasVagrantfile reports whether the lab's Vagrantfile was written (no VM without one).
func (l *Lab) hasVagrantfile() (bool, error) {
	_, err := os.Stat(l.Path(labdir.Vagrantfile))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// OpenLog opens tmp/<lab>/logs/NAME for appending, never through a symlink nor into a file
// with another hard link (host.OpenAppend).
func (l *Lab) OpenLog(name string) (*os.File, error) {
	return host.OpenAppend(l.Log(name), 0o644)
}

// Vagrant returns the lab's Vagrant driver for its provider, logging to
// tmp/<lab>/logs/vagrant.log, with Vagrant's "==>" lines on progress (nil: none); close it
// with the returned function. Vagrant runs in a process group of its own: a cancelled command
// gets SIGTERM (vagrant-libvirt removes a half-uploaded box volume then), its whole group
// SIGKILL after host.Grace.
func (l *Lab) Vagrant(progress io.Writer) (*vagrant.Driver, func() error, error) {
	f, err := l.OpenLog(labdir.VagrantLog)
	if err != nil {
		return nil, nil, err
	}
	return &vagrant.Driver{Dir: l.Dir, Log: f, Progress: progress, Provider: l.Spec.ProviderFor(), Exec: groupExec(l.Dir)}, f.Close, nil
}

// groupExec runs vagrant in dir in a process group of its own (host.Command).
func groupExec(dir string) func(ctx context.Context, env []string, args ...string) *exec.Cmd {
	return func(ctx context.Context, env []string, args ...string) *exec.Cmd {
		cmd := host.Command(ctx, "vagrant", args...)
		cmd.Env, cmd.Dir = env, dir
		return cmd
	}
}

// Lock takes the lab's lock (tmp/<lab>/lock) for a verb that changes the lab: up, provision,
// destroy, halt, snapshot. A lab in use by another labctl is refused at once, naming its pid
// and verb. Release it with the returned function (the end of the process releases it too).
func (l *Lab) Lock(verb string) (unlock func() error, err error) {
	lk, err := host.TryLock(l.Path(labdir.Lock), verb)
	var busy *host.BusyError
	if errors.As(err, &busy) {
		return nil, fmt.Errorf("lab %s is in use by pid %d (%s): wait for it to end, or stop it (kill %d)", l.Spec.Name, busy.PID, busy.What, busy.PID)
	}
	if err != nil {
		return nil, err
	}
	return lk.Unlock, nil
}

// locked runs fn with the lab's lock held for verb and its Vagrant driver open (Vagrant's
// progress on out): how every verb that changes the lab starts. A vagrant process left on the
// lab's machine by a labctl that was killed (SIGKILL ends labctl, not its children) is waited
// for first: Vagrant locks a machine to one process and would refuse this verb's.
func (l *Lab) locked(ctx context.Context, verb string, out io.Writer, fn func(v *vagrant.Driver) error) error {
	unlock, err := l.Lock(verb)
	if err != nil {
		return err
	}
	defer unlock()
	if err := host.WaitForEnv(ctx, "VAGRANT_CWD="+l.Dir, []string{"vagrant", "ruby"}, 10*time.Minute, func(pids []int) {
		fmt.Fprintf(out, "vm: a vagrant process of this lab's machine is still running (pid %s, left by a labctl that was killed?): waiting for it to end (up to 10 minutes)\n", strings.Trim(fmt.Sprint(pids), "[]"))
	}); err != nil {
		return err
	}
	v, closeV, err := l.Vagrant(out)
	if err != nil {
		return err
	}
	defer closeV()
	return fn(v)
}
