package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Check is one host prerequisite: its result and, when it fails, what to do.
type Check struct {
	Name, Detail, Hint string
	OK                 bool
}

// Doctor checks every host prerequisite of a libvirt lab whose VM runs under v.
func Doctor(ctx context.Context, v Libvirt) []Check {
	d := &doctor{name: currentUser(), admin: func(cmd string) string { return cmd }}
	// A normal user is told what an administrator must do, once; labctl never does it.
	if os.Geteuid() != 0 {
		d.admin = func(cmd string) string { return "an administrator runs once: `sudo " + cmd + "`" }
	}
	d.tools()
	d.libvirt(ctx, v)
	d.kvm()
	d.host()
	return d.checks
}

// doctor gathers the checks, naming the user and what an administrator must do.
type doctor struct {
	checks []Check
	name   string
	admin  func(cmd string) string
}

func (d *doctor) add(name string, ok bool, detail, hint string) {
	d.checks = append(d.checks, Check{Name: name, OK: ok, Detail: detail, Hint: hint})
}

// tools checks the host's commands, and the subordinate ids a normal user's builds need.
func (d *doctor) tools() {
	for _, t := range []struct{ bin, pkg string }{
		{"vagrant", "vagrant"}, {"virsh", "libvirt-clients"}, {"libvirtd", "libvirt-daemon-system"},
		{"qemu-system-x86_64", "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"mmdebstrap", "mmdebstrap"},
		{"mkfs.ext4", "e2fsprogs"}, {"ssh-keygen", "openssh-client"}, {"ssh", "openssh-client"}, {"xz", "xz-utils"}, {"zstd", "zstd"},
		{"newuidmap", "uidmap"},
	} {
		p := LookTool(t.bin)
		d.add("tool "+t.bin, p != "", p, d.admin("apt-get install "+t.pkg)+" (or `make deps`)")
	}
	if os.Geteuid() != 0 {
		_, nsErr := InUserNS()
		d.add("subordinate ids of "+d.name, nsErr == nil, "/etc/subuid, /etc/subgid (box and image builds: mmdebstrap --mode=unshare)", d.admin(strings.TrimPrefix(SubIDsHint(d.name), "sudo ")))
	}
}

// libvirt checks vagrant-libvirt, the daemon v and labctl's pool there.
func (d *doctor) libvirt(ctx context.Context, v Libvirt) {
	plugins, err := Command(ctx, "vagrant", "plugin", "list").CombinedOutput()
	d.add("vagrant-libvirt plugin", err == nil && strings.Contains(string(plugins), "vagrant-libvirt"), strings.TrimSpace(firstLine(string(plugins))), "apt-get install vagrant-libvirt")
	if v.Session {
		d.add("libvirt session answers", v.OK(ctx), "virsh -c "+v.URI()+" uri (your own daemon: libvirt starts it, VMs run as you)",
			"install libvirt-daemon-system and qemu: "+d.admin("make deps")+"; then run `virsh -c qemu:///session uri` to see why it does not start")
	} else {
		hint := "run `labctl doctor --fix` (starts virtlogd and libvirtd) or `libvirtd -d`"
		if os.Geteuid() != 0 {
			hint = d.admin("libvirtd -d") + " (or systemctl start libvirtd), and " + d.admin("usermod -aG libvirt "+d.name) + ", then log in again; or use libvirt: session (no administrator)"
		}
		d.add("libvirt system daemon answers you", v.OK(ctx), "virsh -c "+v.URI()+" uri", hint)
	}
	_, perr := v.Virsh(ctx, "pool-info", Pool)
	d.add("storage pool "+Pool, perr == nil, v.PoolDir()+" ("+v.URI()+")", "run `labctl doctor --fix` (labctl up creates it too)")
}

// kvm checks /dev/kvm, where there is one: whether it opens for the user, and its mode.
func (d *doctor) kvm() {
	st, err := os.Stat("/dev/kvm")
	if err != nil {
		return
	}
	if os.Geteuid() != 0 {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err == nil {
			f.Close()
		}
		switch {
		case err == nil:
			d.add("/dev/kvm for you", true, "KVM opens for you", "")
		case !cpuVirt():
			d.add("/dev/kvm for you", true, "not needed: the CPU shows neither vmx nor svm, so VMs run under tcg whoever you are", "")
		default:
			d.add("/dev/kvm for you", false, "KVM does not open for you ("+err.Error()+"): your VMs would run under tcg, many times slower", d.admin("usermod -aG kvm "+d.name)+", then log in again")
		}
	}
	if kvmNodeUnusable() {
		d.add("libvirt and /dev/kvm", !DaemonSeesUnusableKVM(), "KVM cannot be used here; libvirtd must not see a /dev/kvm qemu may open",
			"libvirtd sees a /dev/kvm node qemu may open but KVM cannot be used: libvirt probes qemu again on every call (4 s each here, minutes per new VM). Let labctl start libvirtd (stop yours; `labctl doctor --fix` starts one that does not see the node), or `chmod 0600 /dev/kvm`")
		return
	}
	d.add("/dev/kvm permissions", st.Mode().Perm()&0o060 == 0o060, fmt.Sprintf("mode %o gid %d", st.Mode().Perm(), kvmGid(st)),
		"chgrp kvm /dev/kvm && chmod 0660 /dev/kvm (labctl up does it): qemu runs as libvirt-qemu, in group kvm")
}

// host checks the accelerator, the apt sources and the cache.
func (d *doctor) host() {
	accel, notice, err := Accel("auto")
	d.add("accelerator", err == nil, accel+" "+notice, "")
	src, err := AptSources("bookworm")
	d.add("host apt sources", err == nil, fmt.Sprintf("%d Debian source line(s)", len(src)), "labctl builds boxes and images from the host's Debian mirror: configure one in /etc/apt/sources.list.d/")
	cache := CacheDir()
	werr := os.MkdirAll(cache, 0o755)
	d.add("cache dir", werr == nil, cache, "set LABCTL_CACHE to a writable directory")
	var fsst syscall.Statfs_t
	if syscall.Statfs(cache, &fsst) == nil {
		free := int64(fsst.Bavail) * int64(fsst.Bsize) >> 30
		d.add("free disk in cache", free >= 10, fmt.Sprintf("%d GiB free", free), "a box, an image and a VM need ~10 GiB")
	}
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
