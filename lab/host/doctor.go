package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
)

// Check is one host prerequisite: its result and, when it fails, what to do.
type Check struct {
	Name, Detail, Hint string
	OK                 bool
}

// Doctor checks every host prerequisite of a libvirt lab.
func Doctor(ctx context.Context) []Check {
	var out []Check
	add := func(name string, ok bool, detail, hint string) {
		out = append(out, Check{Name: name, OK: ok, Detail: detail, Hint: hint})
	}
	// A normal user is told what an administrator must do, once; labctl never does it.
	admin := func(cmd string) string { return cmd }
	if os.Geteuid() != 0 {
		admin = func(cmd string) string { return "an administrator runs once: `sudo " + cmd + "`" }
	}
	for _, t := range []struct{ bin, pkg string }{
		{"vagrant", "vagrant"}, {"virsh", "libvirt-clients"}, {"libvirtd", "libvirt-daemon-system"},
		{"qemu-system-x86_64", "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"mmdebstrap", "mmdebstrap"},
		{"mkfs.ext4", "e2fsprogs"}, {"ssh-keygen", "openssh-client"}, {"ssh", "openssh-client"}, {"xz", "xz-utils"},
		{"newuidmap", "uidmap"},
	} {
		p := LookTool(t.bin)
		add("tool "+t.bin, p != "", p, admin("apt-get install "+t.pkg)+" (or `make deps`)")
	}
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if os.Geteuid() != 0 {
		_, nsErr := InUserNS()
		add("subordinate ids of "+name, nsErr == nil, "/etc/subuid, /etc/subgid (box and image builds: mmdebstrap --mode=unshare)", admin(strings.TrimPrefix(SubIDsHint(name), "sudo ")))
	}
	plugins, err := Command(ctx, "vagrant", "plugin", "list").CombinedOutput()
	add("vagrant-libvirt plugin", err == nil && strings.Contains(string(plugins), "vagrant-libvirt"), strings.TrimSpace(firstLine(string(plugins))), "apt-get install vagrant-libvirt")
	if os.Geteuid() == 0 {
		add("libvirtd answers", VirshOK(ctx), "virsh -c qemu:///system version", "run `labctl doctor --fix` (starts virtlogd and libvirtd) or `libvirtd -d`")
		_, perr := Virsh(ctx, "pool-info", Pool)
		add("storage pool "+Pool, perr == nil, PoolDir, "run `labctl doctor --fix` (labctl up creates it too)")
	} else {
		// Not pretended: the VM verbs boot through qemu:///system as root today.
		add("VMs as a normal user", false, "labctl boots its VMs through qemu:///system, as root; qemu:///session is not built yet",
			"run the VM verbs (up, status, exec, halt, destroy, the e2e suite) as root; box and image builds work as you")
	}
	if _, err := os.Stat("/dev/kvm"); err == nil && os.Geteuid() != 0 {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err == nil {
			f.Close()
		}
		add("/dev/kvm for you", err == nil, "KVM (where the accelerator check says it can run)", admin("usermod -aG kvm "+name)+", then log in again")
	}
	if st, err := os.Stat("/dev/kvm"); err == nil {
		gid := -1
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			gid = int(sys.Gid)
		}
		add("/dev/kvm permissions", st.Mode().Perm()&0o060 == 0o060, fmt.Sprintf("mode %o gid %d", st.Mode().Perm(), gid),
			"chgrp kvm /dev/kvm && chmod 0660 /dev/kvm (labctl up does it): otherwise libvirt re-probes qemu for minutes on every domain definition")
	}
	accel, notice, err := Accel("auto")
	add("accelerator", err == nil, accel+" "+notice, "")
	src, err := AptSources("bookworm")
	add("host apt sources", err == nil, fmt.Sprintf("%d Debian source line(s)", len(src)), "labctl builds boxes and images from the host's Debian mirror: configure one in /etc/apt/sources.list.d/")
	cache := CacheDir()
	werr := os.MkdirAll(cache, 0o755)
	add("cache dir", werr == nil, cache, "set LABCTL_CACHE to a writable directory")
	var fsst syscall.Statfs_t
	if syscall.Statfs(cache, &fsst) == nil {
		free := int64(fsst.Bavail) * int64(fsst.Bsize) >> 30
		add("free disk in cache", free >= 10, fmt.Sprintf("%d GiB free", free), "a box, an image and a VM need ~10 GiB")
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// LookTool finds a tool on PATH or in the sbin directories a normal user's PATH lacks.
func LookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
