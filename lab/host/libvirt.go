package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Pool is labctl's libvirt storage pool (boxes and data disks live there), on either daemon.
const Pool = "labctl"

// Libvirt is the libvirt daemon a lab's VM runs under, with labctl's pool there: the system
// daemon (qemu:///system: root, or a member of group libvirt; qemu runs as libvirt-qemu) or
// the user's own session daemon (qemu:///session: started by libvirt on first use, qemu runs as
// the user, the pool under the user's XDG data directory). It is resolved once per command
// (LibvirtFor) and every virsh call of the command goes through it.
type Libvirt struct {
	// Session chooses qemu:///session; otherwise qemu:///system.
	Session bool
}

// The two connections by their lab.yaml names.
const (
	Session = "session"
	System  = "system"
)

// LibvirtFor resolves lab.yaml's libvirt setting: session, system, or auto (or empty): system
// for root, session for everyone else.
func LibvirtFor(choice string) (Libvirt, error) {
	switch choice {
	case Session:
		return Libvirt{Session: true}, nil
	case System:
		return Libvirt{}, nil
	case "auto", "":
		return Libvirt{Session: os.Geteuid() != 0}, nil
	}
	return Libvirt{}, fmt.Errorf("libvirt %q is not supported: use auto, session or system", choice)
}

// Name is the connection's lab.yaml name: session or system.
func (v Libvirt) Name() string {
	if v.Session {
		return Session
	}
	return System
}

// URI is the connection's libvirt URI.
func (v Libvirt) URI() string { return "qemu:///" + v.Name() }

// PoolDir is where labctl's pool keeps its volumes: for the system daemon under
// /var/lib/libvirt/images (qemu, user libvirt-qemu, must reach it), for a session under
// $XDG_DATA_HOME/labctl/images (~/.local/share/labctl/images).
func (v Libvirt) PoolDir() string {
	if !v.Session {
		return "/var/lib/libvirt/images/labctl"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "labctl", "images")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "labctl", "images")
}

// Ensure makes libvirt usable for labctl: starts the daemons when nothing runs them (Start)
// and creates labctl's storage pool. Each action is reported on w.
func (v Libvirt) Ensure(ctx context.Context, w io.Writer) error {
	if err := v.Start(ctx, w); err != nil {
		return err
	}
	return v.ensurePool(ctx, w)
}

// Start makes the daemon answer. A session daemon is started by libvirt itself on the first
// call (and leaves after two idle minutes). The system daemon is started by root when nothing
// runs it (virtlogd and libvirtd; no service manager here), libvirtd so that it sees /dev/kvm
// as qemu can use it (startLibvirtd). Root makes a working /dev/kvm group kvm 0660 as Debian's
// udev rule does. A normal user is told what an administrator does instead.
func (v Libvirt) Start(ctx context.Context, w io.Writer) error {
	if !v.Session {
		fixKVMPermissions(w)
	}
	if v.seen("answers") {
		return nil
	}
	if v.OK(ctx) {
		v.remember("answers")
		return nil
	}
	switch {
	case v.Session:
		if LookTool("libvirtd") == "" {
			return errors.New("libvirt's daemon is not installed, so there is no qemu:///session: an administrator runs `sudo make deps` (or apt-get install libvirt-daemon-system) once")
		}
	case os.Geteuid() != 0:
		return fmt.Errorf("the system libvirt (qemu:///system) does not answer you: an administrator starts it (`sudo libvirtd -d`, or systemctl start libvirtd) and adds you to group libvirt (`sudo usermod -aG libvirt %s`, then log in again; where no system D-Bus runs polkit, libvirtd.conf also needs unix_sock_group = \"libvirt\", unix_sock_rw_perms = \"0770\", auth_unix_rw = \"none\"); or set libvirt: session (your own daemon, no administrator)", currentUser())
	default:
		if err := startMissing(ctx, w); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for !v.OK(ctx) {
		if time.Now().After(deadline) {
			if v.Session {
				return errors.New("libvirt's session daemon does not answer `virsh -c qemu:///session uri` after 60 s: run it by hand to see why, then `labctl doctor`")
			}
			return errors.New("libvirtd does not answer `virsh uri` after 60 s: check `libvirtd -d` by hand, then `labctl doctor`")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if !v.Session && os.Geteuid() == 0 {
			// A daemon that was on its way out when looked for (stopped by someone, taking
			// seconds to exit) is gone now: start it, rather than wait for it to answer.
			if err := startMissing(ctx, w); err != nil {
				return err
			}
		}
	}
	v.remember("answers")
	return nil
}

// startMissing starts, as root, the system daemons that no process runs (virtlogd, then
// libvirtd: no service manager here).
func startMissing(ctx context.Context, w io.Writer) error {
	for _, d := range []string{"virtlogd", "libvirtd"} {
		if exec.CommandContext(ctx, "pgrep", "-x", d).Run() == nil {
			continue
		}
		if _, err := exec.LookPath(d); err != nil {
			return fmt.Errorf("%s is not installed: run `make deps` (or apt-get install libvirt-daemon-system)", d)
		}
		how, err := startDaemon(ctx, d)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "host: started %s (no service manager runs it)%s\n", d, how)
	}
	return nil
}

// seenByProcess holds what this process has seen of each daemon ("answers <URI>", "pool
// <URI>"), so that a command asks each once: every virsh call is a process and a connection
// (25-100 ms here), and `labctl up` on a running lab asked both twice.
var seenByProcess sync.Map

func (v Libvirt) seen(what string) bool {
	_, ok := seenByProcess.Load(what + " " + v.URI())
	return ok
}

func (v Libvirt) remember(what string) { seenByProcess.Store(what+" "+v.URI(), true) }

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// OK reports whether the daemon answers within 10 s (a session daemon is started by the
// call when none runs). It asks `virsh uri`, which opens a connection and nothing more: `virsh
// version` asks the hypervisor's version, for which libvirt may probe qemu's capabilities
// (seen: 3.5-4 s on every call on a host with a /dev/kvm node and no vmx/svm, where `virsh
// uri` took 38 ms), and up asks on every run.
func (v Libvirt) OK(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return Command(ctx, "virsh", "-c", v.URI(), "uri").Run() == nil
}

// Virsh runs virsh against the connection and returns its output; a failure carries virsh's
// own message.
func (v Libvirt) Virsh(ctx context.Context, args ...string) (string, error) {
	out, err := Command(ctx, "virsh", append([]string{"-c", v.URI()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh -c %s %s: %v: %s", v.URI(), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// PoolExists reports whether labctl's pool is defined; an error means libvirt did not answer.
func (v Libvirt) PoolExists(ctx context.Context) (bool, error) {
	if v.seen("pool") {
		return true, nil
	}
	out, err := v.Virsh(ctx, "pool-list", "--all", "--name")
	if err != nil {
		return false, err
	}
	for _, name := range strings.Fields(out) {
		if name == Pool {
			v.remember("pool")
			return true, nil
		}
	}
	return false, nil
}

// ensurePool defines, builds (the daemon makes its directory) and starts labctl's pool.
func (v Libvirt) ensurePool(ctx context.Context, w io.Writer) error {
	// The pool is there and running, as almost always: one call.
	if info, err := v.Virsh(ctx, "pool-info", Pool); err == nil && strings.Contains(info, "running") {
		v.remember("pool")
		return nil
	}
	exists, err := v.PoolExists(ctx)
	if err != nil {
		return err
	}
	if !exists {
		if v.Session {
			// The daemon makes only the last directory of the path.
			if err := os.MkdirAll(filepath.Dir(v.PoolDir()), 0o700); err != nil {
				return err
			}
		}
		if _, err := v.Virsh(ctx, "pool-define-as", Pool, "dir", "--target", v.PoolDir()); err != nil {
			return err
		}
		if _, err := v.Virsh(ctx, "pool-build", Pool); err != nil {
			return err
		}
		fmt.Fprintf(w, "host: defined libvirt storage pool %s at %s (%s)\n", Pool, v.PoolDir(), v.URI())
	}
	info, err := v.Virsh(ctx, "pool-info", Pool)
	if err != nil {
		return err
	}
	if !strings.Contains(info, "running") {
		if _, err := v.Virsh(ctx, "pool-start", Pool); err != nil {
			return err
		}
	}
	v.remember("pool")
	return nil
}

// DeleteVolumes removes the pool volumes whose names start with prefix (a lab's disks left
// behind by a failed run). It returns their names. No pool means no volumes.
func (v Libvirt) DeleteVolumes(ctx context.Context, prefix string) ([]string, error) {
	vols, err := v.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, vol := range vols {
		if strings.HasPrefix(vol.Name, prefix) {
			if err := v.DeleteVolume(ctx, vol.Name); err != nil {
				return gone, err
			}
			gone = append(gone, vol.Name)
		}
	}
	return gone, nil
}

// LabctlDomain returns a libvirt domain of some labctl lab ("" when there is none): a box's
// copy in the pool may back it.
func (v Libvirt) LabctlDomain(ctx context.Context) (string, error) {
	doms, err := v.Domains(ctx)
	if err != nil {
		return "", err
	}
	if i := slices.IndexFunc(doms, func(d string) bool { return strings.HasPrefix(d, "labctl-") }); i >= 0 {
		return doms[i], nil
	}
	return "", nil
}

// QemuReaches checks that the system daemon's qemu (user libvirt-qemu) can reach dir: that
// every directory from / down to it lets others enter. A normal user's cache under its home
// (mode 0700) does not, and the VM of a box labctl built boots the kernel kept there.
func QemuReaches(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("libvirt: system as a normal user: qemu runs as libvirt-qemu there and must read the box's kernel under %s, but %s (mode %04o) lets no other user in: set LABCTL_CACHE to a directory others can enter (an administrator runs once `sudo install -d -o %s -m 0755 /var/cache/labctl-%s`), or use libvirt: session", dir, d, st.Mode().Perm(), currentUser(), currentUser())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
