package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
	for _, t := range []struct{ bin, pkg string }{
		{"vagrant", "vagrant"}, {"virsh", "libvirt-clients"}, {"libvirtd", "libvirt-daemon-system"},
		{"qemu-system-x86_64", "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"mmdebstrap", "mmdebstrap"},
		{"mkfs.ext4", "e2fsprogs"}, {"ssh-keygen", "openssh-client"}, {"ssh", "openssh-client"}, {"xz", "xz-utils"},
	} {
		p, err := exec.LookPath(t.bin)
		add("tool "+t.bin, err == nil, p, "apt-get install "+t.pkg+" (or `make deps`)")
	}
	plugins, err := Command(ctx, "vagrant", "plugin", "list").CombinedOutput()
	add("vagrant-libvirt plugin", err == nil && strings.Contains(string(plugins), "vagrant-libvirt"), strings.TrimSpace(firstLine(string(plugins))), "apt-get install vagrant-libvirt")
	add("libvirtd answers", VirshOK(ctx), "virsh -c qemu:///system version", "run `labctl doctor --fix` (starts virtlogd and libvirtd) or `libvirtd -d`")
	_, perr := Virsh(ctx, "pool-info", Pool)
	add("storage pool "+Pool, perr == nil, PoolDir, "run `labctl doctor --fix` (labctl up creates it too)")
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
