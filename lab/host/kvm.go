package host

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// libvirt keeps the capabilities it probed from each qemu binary in
// /var/cache/libvirt/qemu/capabilities and probes again when they no longer match the host. One
// thing it checks on every call that needs them: whether /dev/kvm is usable, which it decides
// by the node alone (it exists and qemu's user may open it for reading and writing). On a host
// with a /dev/kvm node that KVM cannot use (no vmx/svm: a VM of a cloud, or a node whose
// module is missing) the node says usable, the probe says no KVM, and every call probes again:
// measured here with such a node (`mknod /dev/kvm c 10 232`, group kvm 0660) `virsh
// capabilities` took 3.9-4.5 s on every call against 0.04 s with the node 0600 root, and
// domcapabilities 2.0 s. A new VM's definition makes several such calls.

// kvmNodeUnusable reports whether the host has a /dev/kvm node that KVM cannot use.
func kvmNodeUnusable() bool {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false
	}
	ok, _ := kvmUsable()
	return !ok
}

// The files the libvirtd labctl starts sees, in its own mount namespace, when the host has a
// /dev/kvm node that KVM cannot use: an empty 0600 file at /dev/kvm (libvirt then finds KVM
// unusable, as its probe does, and keeps its cache), and qemu.conf with `namespaces = []`:
// libvirt moves each mount under /dev into a domain's own /dev, and fails to move a file
// mounted there ("Unable to move /run/libvirt/qemu/1-....kvm mount to /dev/kvm: Invalid
// argument", seen here), so its domains see this namespace's /dev, mask included.
const (
	noKVMFile    = "/run/labctl/no-kvm"
	qemuConfFile = "/run/labctl/qemu.conf"
	hostQemuConf = "/etc/libvirt/qemu.conf"
)

// startDaemon starts virtlogd or libvirtd detached (-d), and says how when it is not plainly.
// On a host with a /dev/kvm node KVM cannot use, libvirtd starts in a mount namespace of its
// own (host mounts still reach it) with the files above.
func startDaemon(ctx context.Context, d string) (string, error) {
	cmd := exec.CommandContext(ctx, d, "-d")
	how := ""
	if d == "libvirtd" && kvmNodeUnusable() {
		if err := writeNoKVMFiles(); err != nil {
			return "", fmt.Errorf("start libvirtd: %w", err)
		}
		cmd = exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "slave", "sh", "-c",
			`mount --bind "$1" /dev/kvm && mount --bind "$2" "$3" && exec libvirtd -d`, "sh", noKVMFile, qemuConfFile, hostQemuConf)
		how = ", with /dev/kvm hidden from it: KVM cannot be used here, and a usable-looking node makes libvirt probe qemu again on every call"
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("start %s: %v: %s (see `labctl doctor`)", d, err, strings.TrimSpace(string(out)))
	}
	return how, nil
}

// writeNoKVMFiles writes noKVMFile and qemuConfFile: the host's qemu.conf without its own
// namespaces setting, and `namespaces = []`.
func writeNoKVMFiles() error {
	if err := os.MkdirAll(filepath.Dir(noKVMFile), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(noKVMFile, nil, 0o600); err != nil {
		return err
	}
	conf, err := os.ReadFile(hostQemuConf)
	if err != nil {
		return err
	}
	return os.WriteFile(qemuConfFile, []byte(QemuConfNoNamespaces(string(conf))), 0o600)
}

// QemuConfNoNamespaces is qemu.conf's text with its namespaces setting replaced by none.
func QemuConfNoNamespaces(conf string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(conf, "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "namespaces" {
			continue
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(b.String(), "\n") && b.Len() > 0 {
		b.WriteString("\n")
	}
	b.WriteString("# labctl: domains share this daemon's mount namespace, where /dev/kvm is masked\nnamespaces = []\n")
	return b.String()
}

// DaemonSeesUnusableKVM reports whether the running system libvirtd sees a /dev/kvm node that
// qemu's user may open while KVM cannot be used: the re-probe on every call. It reads the node
// as the daemon sees it (/proc/PID/root, root only); false when it cannot tell.
func DaemonSeesUnusableKVM() bool {
	if os.Geteuid() != 0 || !kvmNodeUnusable() {
		return false
	}
	out, err := exec.Command("pgrep", "-x", "-u", "root", "libvirtd").Output()
	if err != nil {
		return false
	}
	for _, pid := range strings.Fields(string(out)) {
		st, err := os.Stat("/proc/" + pid + "/root/dev/kvm")
		if err == nil && st.Mode()&os.ModeCharDevice != 0 && st.Mode().Perm()&0o066 != 0 {
			return true
		}
	}
	return false
}

// fixKVMPermissions sets a /dev/kvm that KVM can use to group kvm, mode 0660, when root finds
// it otherwise (qemu runs as libvirt-qemu, in group kvm), and says on w what it did or why it
// could not. A node KVM cannot use is left as it is (startDaemon hides it from libvirtd).
func fixKVMPermissions(w io.Writer) {
	st, err := os.Stat("/dev/kvm")
	if err != nil || os.Geteuid() != 0 || st.Mode().Perm()&0o060 == 0o060 {
		return
	}
	if ok, _ := kvmUsable(); !ok {
		return
	}
	if out, err := exec.Command("chgrp", "kvm", "/dev/kvm").CombinedOutput(); err != nil {
		fmt.Fprintf(w, "host: could not set /dev/kvm to group kvm (%v: %s): qemu may not open it\n", err, strings.TrimSpace(string(out)))
		return
	}
	if err := os.Chmod("/dev/kvm", 0o660); err != nil {
		fmt.Fprintf(w, "host: could not make /dev/kvm mode 0660 (%v): qemu may not open it\n", err)
		return
	}
	fmt.Fprintln(w, "host: /dev/kvm set to group kvm, mode 0660 (as Debian's udev rule does)")
}

// kvmGid is the group of the /dev/kvm node, -1 when it cannot be read.
func kvmGid(st os.FileInfo) int {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Gid)
	}
	return -1
}
