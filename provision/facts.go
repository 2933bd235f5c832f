package provision

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/labctl/labctl/lab/lxc"

	"github.com/labctl/labctl/provision/remote"

	"github.com/hashicorp/go-version"
)

// Facts are what the guest is, read before anything is changed: they choose the LXC dialect
// and the way unprivileged containers are started.
type Facts struct {
	Kernel     string // uname -r
	Distro     string // ID of os-release
	Release    string // VERSION_CODENAME
	LXCVersion string // lxc-create --version; empty when LXC is not installed
	Cgroup     string // v1 or v2
	AppArmor   bool   // AppArmor enabled in the kernel
	Systemd    bool   // systemd is PID 1
	UserNS     bool   // unprivileged user namespaces allowed
	UID        int    // the lab user's uid
}

// factsScript prints key=value lines; every probe tolerates absence.
const factsScript = `echo kernel=$(uname -r)
. /etc/os-release 2>/dev/null; echo distro=$ID; echo release=$VERSION_CODENAME
echo lxc=$(lxc-create --version 2>/dev/null)
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo cgroup=v2; else echo cgroup=v1; fi
echo apparmor=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)
if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
echo userns_max=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)
echo userns_clone=$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null)
echo uid=$(id -u %s 2>/dev/null)`

// GatherFacts reads the facts of the VM in one command (which the lab's agent may answer from
// its first answer since the VM's boot and the last root command there), within CheckDeadline.
func GatherFacts(ctx context.Context, vm remote.Target, user string) (Facts, error) {
	var r remote.Result
	err := within(ctx, CheckDeadline, func(ctx context.Context) error {
		var err error
		r, err = remote.Must(ctx, vm, remote.Cmd{Line: fmt.Sprintf(factsScript, remote.Quote(user)), Cache: true})
		return err
	})
	if err != nil {
		return Facts{}, fmt.Errorf("gather facts: %w", err)
	}
	return ParseFacts(r.Stdout)
}

// ParseFacts parses the output of factsScript.
func ParseFacts(out string) (Facts, error) {
	kv := parseKV(out)
	f := Facts{
		Kernel: kv["kernel"], Distro: kv["distro"], Release: kv["release"], LXCVersion: kv["lxc"],
		Cgroup: kv["cgroup"], AppArmor: kv["apparmor"] == "Y", Systemd: kv["systemd"] == "yes",
		UserNS: kv["userns_max"] != "0" && kv["userns_clone"] != "0",
	}
	if f.Kernel == "" {
		return f, fmt.Errorf("facts: no kernel version in %q", out)
	}
	uid, err := strconv.Atoi(kv["uid"])
	if err != nil {
		return f, fmt.Errorf("facts: the lab user does not exist in the guest (id -u printed %q): the box must have it", kv["uid"])
	}
	f.UID = uid
	return f, nil
}

// KernelVersion is the kernel's version without its distro suffix: "6.1.0-26-amd64" parses
// as a pre-release, and constraints never match pre-releases, so Core() is compared.
func (f Facts) KernelVersion() (*version.Version, error) {
	v, err := version.NewVersion(f.Kernel)
	if err != nil {
		return nil, fmt.Errorf("kernel version %q: %w", f.Kernel, err)
	}
	return v.Core(), nil
}

// LXC is the guest's LXC version with what it can do, or nil when LXC is not installed
// (or prints a version labctl does not know).
func (f Facts) LXC() *lxc.Version {
	v, err := lxc.Parse(f.LXCVersion)
	if err != nil {
		return nil
	}
	return &v
}

// Delegated reports whether unprivileged containers must be started inside a delegated
// systemd scope (cgroup v2 under systemd).
func (f Facts) Delegated() bool { return f.Cgroup == "v2" && f.Systemd }

// String is a one-line summary.
func (f Facts) String() string {
	return fmt.Sprintf("kernel %s, %s %s, LXC %s, cgroup %s, apparmor %v, systemd %v", f.Kernel, f.Distro, f.Release, f.LXCVersion, f.Cgroup, f.AppArmor, f.Systemd)
}

// cellFactsScript prints what a matrix cell records of its guest (key=value lines): the
// kernel's container-relevant options, whether the syscalls LXC uses when it can are there
// (pidfd, the new mount API, idmapped mounts, seccomp notify), AppArmor's and systemd's
// versions, LXC's version and where it runs from. Every probe tolerates absence.
const cellFactsScript = `k=$(uname -r); echo kernel=$k
cfg=/boot/config-$k
for o in USER_NS CGROUPS MEMCG CGROUP_BPF CGROUP_PIDS CPUSETS SECCOMP_FILTER SECURITY_APPARMOR BTRFS_FS VETH BRIDGE; do
  echo "config.$o=$(sed -n "s/^CONFIG_$o=//p" $cfg 2>/dev/null)"
done
for s in pidfd_open fsopen mount_setattr clone3; do
  if grep -qw "__x64_sys_$s" /proc/kallsyms 2>/dev/null; then echo "syscall.$s=yes"; else echo "syscall.$s=no"; fi
done
if grep -qw seccomp_notify_ioctl /proc/kallsyms 2>/dev/null; then echo seccomp.notify=yes; else echo seccomp.notify=no; fi
echo "userns.max=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)"
echo "apparmor.enabled=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
echo "apparmor.parser=$(apparmor_parser --version 2>/dev/null | sed -n '1s/.*version //p')"
echo "apparmor.restrict_userns=$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)"
echo "systemd=$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo cgroup=v2; echo "cgroup.controllers=$(cat /sys/fs/cgroup/cgroup.controllers)"; else echo cgroup=v1; fi
echo "lxc=$(lxc-create --version 2>/dev/null)"
echo "lxc.from=$(dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}' liblxc1 2>/dev/null || echo built)"`

// CellFacts reads what a matrix cell records of its guest (cellFactsScript), as key=value.
func CellFacts(ctx context.Context, vm remote.Target) (map[string]string, error) {
	r, err := remote.Must(ctx, vm, remote.Cmd{Line: cellFactsScript, Sudo: true})
	if err != nil {
		return nil, fmt.Errorf("cell facts: %w", err)
	}
	return parseKV(r.Stdout), nil
}

// parseKV reads key=value lines; the values come from the guest and are made printable (a
// kernel or LXC version with escape sequences reaches no terminal as such).
func parseKV(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k != "" {
			kv[k] = remote.Printable(strings.TrimSpace(v))
		}
	}
	return kv
}
