// Package lab is one lab on the host: its spec, its directory tmp/<name>/ with the state
// labctl keeps between commands, and its lifecycle (boot, destroy, validate) through the
// Vagrant driver and a Provider. It joins the packages below it; the guest is provision's.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// Lab is one lab on disk: its spec and its state directory tmp/<name>/.
type Lab struct {
	Spec *spec.Spec
	// Dir is tmp/<name>, absolute.
	Dir string
}

// State is what labctl remembers about a lab between commands (tmp/<lab>/state.json).
type State struct {
	// SSHPort is the 127.0.0.1 port forwarded to the guest's sshd (libvirt).
	SSHPort int `json:"ssh_port,omitempty"`
	// Accel is the accelerator the VM was created with (kvm or tcg).
	Accel string `json:"accel,omitempty"`
	// Libvirt is the libvirt daemon the VM was created under (session or system): later
	// commands talk to that one, and refuse when lab.yaml or --libvirt now names the other.
	Libvirt string `json:"libvirt,omitempty"`
	// Box is the box the VM was created from, with the box's cache key.
	Box string `json:"box,omitempty"`
	// DomainUUID is the UUID of the libvirt domain this lab created: labctl destroys a domain
	// of the lab's name only when it has this UUID (or the one Vagrant tracks for the lab).
	DomainUUID string `json:"domain_uuid,omitempty"`
	// Volumes are the pool volumes this lab created; labctl deletes no other.
	Volumes []string `json:"volumes,omitempty"`
	// SSH is the VM's SSH endpoint as `vagrant ssh-config` told it once: later commands reach
	// the VM without asking Vagrant again (destroy forgets it with the state).
	SSH *SSHEndpoint `json:"ssh,omitempty"`
	// Ready is the snapshot taken after the first green provision (`labctl reset`).
	Ready *Ready `json:"ready,omitempty"`
}

// SSHEndpoint is where and as whom the VM's sshd is reached.
type SSHEndpoint struct {
	Host          string   `json:"host"`
	Port          int      `json:"port"`
	User          string   `json:"user"`
	IdentityFiles []string `json:"identity_files"`
}

// Open returns the lab of spec s under root/tmp/<name>, creating the directories. It refuses
// a tmp/, a lab directory or a logs/ that another user owns or every user may write to (run
// from /, tmp/ is /tmp), and a lab directory or logs/ that is a symlink: another user could
// plant a Vagrantfile there, which Vagrant runs, or symlinks for the state and the logs.
func Open(root string, s *spec.Spec) (*Lab, error) {
	tmp, err := filepath.Abs(filepath.Join(root, "tmp"))
	if err != nil {
		return nil, err
	}
	if err := host.SafeDir(tmp, 0o755, true); err != nil {
		return nil, fmt.Errorf("lab %s: %w", s.Name, err)
	}
	abs := filepath.Join(tmp, s.Name)
	for _, d := range []string{abs, filepath.Join(abs, "logs")} {
		if err := host.SafeDir(d, 0o755, false); err != nil {
			return nil, fmt.Errorf("lab %s: %w", s.Name, err)
		}
	}
	return &Lab{Spec: s, Dir: abs}, nil
}

// Path joins parts under the lab directory.
func (l *Lab) Path(parts ...string) string {
	return filepath.Join(append([]string{l.Dir}, parts...)...)
}

// KnownHosts is the file where the VM's host key is pinned.
func (l *Lab) KnownHosts() string { return l.Path("known_hosts") }

// LogDir is tmp/<lab>/logs.
func (l *Lab) LogDir() string { return l.Path("logs") }

// ConsoleLog is tmp/<lab>/logs/console.log, where libvirt keeps the guest's serial console.
func (l *Lab) ConsoleLog() string { return l.Path("logs", "console.log") }

// ReportDir is tmp/<lab>/reports, where the e2e suite writes its JUnit and JSON reports.
func (l *Lab) ReportDir() string { return l.Path("reports") }

// OpenLog opens tmp/<lab>/logs/NAME for appending, never through a symlink.
func (l *Lab) OpenLog(name string) (*os.File, error) {
	p := l.Path("logs", name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY|syscall.O_NOFOLLOW, 0o644)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink: labctl does not write through it (it could point anywhere); remove it", p)
	}
	return f, err
}

// Vagrant returns the lab's Vagrant driver, logging to tmp/<lab>/logs/vagrant.log, with
// Vagrant's "==>" lines on progress (nil: none); close it with the returned function. Vagrant
// runs in a process group of its own: a cancelled command gets SIGTERM (vagrant-libvirt
// removes a half-uploaded box volume then), its whole group SIGKILL after host.Grace.
func (l *Lab) Vagrant(progress io.Writer) (*vagrant.Driver, func() error, error) {
	f, err := l.OpenLog("vagrant.log")
	if err != nil {
		return nil, nil, err
	}
	return &vagrant.Driver{Dir: l.Dir, Log: f, Progress: progress, Exec: groupExec(l.Dir)}, f.Close, nil
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
	lk, err := host.TryLock(l.Path("lock"), verb)
	var busy *host.BusyError
	if errors.As(err, &busy) {
		return nil, fmt.Errorf("lab %s is in use by pid %d (%s): wait for it to end, or stop it (kill %d)", l.Spec.Name, busy.PID, busy.What, busy.PID)
	}
	if err != nil {
		return nil, err
	}
	return lk.Unlock, nil
}

// LoadState reads state.json (never through a symlink); a missing file is an empty state.
func (l *Lab) LoadState() (State, error) {
	var st State
	p := l.Path("state.json")
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if errors.Is(err, syscall.ELOOP) {
		return st, fmt.Errorf("%s is a symlink: labctl does not follow it (it could point anywhere); remove it (`labctl destroy` first if a VM exists)", p)
	}
	if err != nil {
		return st, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s is corrupt: %w (delete it; `labctl destroy` first if a VM exists)", p, err)
	}
	return st, nil
}

// SaveState writes state.json, whole or not at all.
func (l *Lab) SaveState(st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return host.WriteFileAtomic(l.Path("state.json"), append(data, '\n'), 0o644)
}

// Libvirt is the libvirt daemon of the lab's VM: the one its spec names (host.LibvirtFor),
// refused when the lab's VM was created under the other one.
func (l *Lab) Libvirt() (host.Libvirt, error) {
	st, err := l.LoadState()
	if err != nil {
		return host.Libvirt{}, err
	}
	return l.libvirtOf(st)
}

// libvirtOf is Libvirt for a state already read.
func (l *Lab) libvirtOf(st State) (host.Libvirt, error) {
	virt, err := host.LibvirtFor(l.Spec.Libvirt)
	if err != nil {
		return virt, err
	}
	return virt, l.sameLibvirt(st, virt)
}

// sameLibvirt refuses a daemon other than the one the lab's VM was created under: the VM,
// its disks and its snapshots are only known to that one.
func (l *Lab) sameLibvirt(st State, virt host.Libvirt) error {
	if st.Libvirt == "" || st.Libvirt == virt.Name() {
		return nil
	}
	was, _ := host.LibvirtFor(st.Libvirt)
	return fmt.Errorf("lab %s's VM was created under libvirt %s (%s), and this command would use %s (%s): set libvirt: %s in lab.yaml (or pass --libvirt %s), or `labctl destroy --libvirt %s` the lab first",
		l.Spec.Name, was.Name(), was.URI(), virt.Name(), virt.URI(), was.Name(), was.Name(), was.Name())
}
