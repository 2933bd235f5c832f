package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Pool is labctl's libvirt storage pool (boxes and data disks live there).
const Pool = "labctl"

// PoolDir is where the pool keeps its volumes; qemu (user libvirt-qemu) must reach it.
const PoolDir = "/var/lib/libvirt/images/labctl"

// CacheDir is where labctl keeps boxes, images and Vagrant's home, outside the repository:
// $LABCTL_CACHE, else /var/cache/labctl for root (qemu runs as libvirt-qemu and cannot enter
// /root), else $XDG_CACHE_HOME/labctl or ~/.cache/labctl.
func CacheDir() string {
	if d := os.Getenv("LABCTL_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/labctl"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "labctl")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "labctl")
}

// VagrantHome is VAGRANT_HOME for every labctl call of vagrant.
func VagrantHome() string { return filepath.Join(CacheDir(), "vagrant.d") }

// Accel resolves the accelerator: kvm only when /dev/kvm opens and the CPU has vmx or svm
// (a KVM that cannot run a stock kernel, as here, is not used); else tcg. notice says why,
// in one line, when the choice was automatic.
func Accel(want string) (accel, notice string, err error) {
	kvmOK, why := kvmUsable()
	switch want {
	case "kvm":
		if !kvmOK {
			return "", "", fmt.Errorf("accelerator: kvm was asked for but %s: use accelerator: tcg (or auto)", why)
		}
		return "kvm", "", nil
	case "tcg":
		return "tcg", "", nil
	case "auto", "":
		if kvmOK {
			return "kvm", "", nil
		}
		return "tcg", "accelerator: tcg (software emulation, slow) because " + why + "; set accelerator: kvm to insist", nil
	}
	return "", "", fmt.Errorf("accelerator %q is not supported: use auto, kvm or tcg", want)
}

func kvmUsable() (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, "/dev/kvm does not open (" + err.Error() + ")"
	}
	f.Close()
	cpu, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false, "/proc/cpuinfo is unreadable"
	}
	for _, line := range strings.Split(string(cpu), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, fl := range strings.Fields(line) {
				if fl == "vmx" || fl == "svm" {
					return true, ""
				}
			}
		}
	}
	return false, "the CPU shows neither vmx nor svm (KVM here cannot boot a stock kernel)"
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free 127.0.0.1 port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortFree reports whether port is free on 127.0.0.1.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// EnsureLibvirt makes libvirt usable for labctl: starts virtlogd and libvirtd when nothing
// runs them (no service manager here), makes /dev/kvm group kvm 0660 as Debian's udev rule
// does (without it libvirt re-probes qemu on every call: "KVM was enabled when probing ...
// but it is not available now", two minutes per domain definition), and creates labctl's
// storage pool. Each action is reported on w.
func EnsureLibvirt(ctx context.Context, w io.Writer) error {
	if st, err := os.Stat("/dev/kvm"); err == nil && os.Geteuid() == 0 && st.Mode().Perm()&0o060 != 0o060 {
		if err := exec.Command("chgrp", "kvm", "/dev/kvm").Run(); err == nil {
			if err := os.Chmod("/dev/kvm", 0o660); err == nil {
				fmt.Fprintln(w, "host: /dev/kvm set to group kvm, mode 0660 (as Debian's udev rule does)")
			}
		}
	}
	if !virshOK(ctx) {
		for _, d := range []string{"virtlogd", "libvirtd"} {
			if exec.Command("pgrep", "-x", d).Run() == nil {
				continue
			}
			if _, err := exec.LookPath(d); err != nil {
				return fmt.Errorf("%s is not installed: run `make deps` (or apt-get install libvirt-daemon-system)", d)
			}
			if out, err := exec.CommandContext(ctx, d, "-d").CombinedOutput(); err != nil {
				return fmt.Errorf("start %s: %v: %s (see `labctl doctor`)", d, err, strings.TrimSpace(string(out)))
			}
			fmt.Fprintf(w, "host: started %s (no service manager runs it)\n", d)
		}
		deadline := time.Now().Add(60 * time.Second)
		for !virshOK(ctx) {
			if time.Now().After(deadline) {
				return errors.New("libvirtd does not answer `virsh version` after 60 s: check `libvirtd -d` by hand, then `labctl doctor`")
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return ensurePool(ctx, w)
}

func virshOK(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "virsh", "-c", "qemu:///system", "version").Run() == nil
}

func virsh(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func ensurePool(ctx context.Context, w io.Writer) error {
	info, err := virsh(ctx, "pool-info", Pool)
	if err != nil {
		if err := os.MkdirAll(PoolDir, 0o755); err != nil {
			return err
		}
		if _, err := virsh(ctx, "pool-define-as", Pool, "dir", "--target", PoolDir); err != nil {
			return err
		}
		fmt.Fprintf(w, "host: defined libvirt storage pool %s at %s\n", Pool, PoolDir)
		info, _ = virsh(ctx, "pool-info", Pool)
	}
	if !strings.Contains(info, "running") {
		if _, err := virsh(ctx, "pool-start", Pool); err != nil {
			return err
		}
	}
	return nil
}

// DeleteVolumes removes the pool volumes whose names start with prefix (a lab's disks left
// behind by a failed run). It returns their names.
func DeleteVolumes(ctx context.Context, prefix string) ([]string, error) {
	out, err := virsh(ctx, "vol-list", Pool, "--details")
	if err != nil {
		return nil, nil // no pool: nothing to delete
	}
	var gone []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			if _, err := virsh(ctx, "vol-delete", "--pool", Pool, f[0]); err != nil {
				return gone, err
			}
			gone = append(gone, f[0])
		}
	}
	return gone, nil
}

// DomainExists reports whether libvirt knows a domain by that name.
func DomainExists(ctx context.Context, name string) bool {
	_, err := virsh(ctx, "dominfo", name)
	return err == nil
}

// AptSources are the host's Debian apt sources as mmdebstrap arguments for release: the
// host's own mirror (read from its apt configuration, never a name written in code), with its
// codename replaced by release.
func AptSources(release string) ([]string, error) {
	host := hostCodename()
	var out []string
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, stanza := range strings.Split(string(data), "\n\n") {
			fields := map[string]string{}
			for _, line := range strings.Split(stanza, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
					fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			out = append(out, debianLines(fields["Types"], fields["URIs"], fields["Suites"], fields["Components"], host, release)...)
		}
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "deb" && !strings.HasPrefix(f[1], "[") {
				out = append(out, debianLines("deb", f[1], f[2], strings.Join(f[3:], " "), host, release)...)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no Debian apt source on this host (/etc/apt/sources.list*): labctl builds boxes and images from the host's own mirror")
	}
	return out, nil
}

func debianLines(types, uris, suites, comps, host, release string) []string {
	if !strings.Contains(" "+types+" ", " deb ") || uris == "" {
		return nil
	}
	var out []string
	for _, suite := range strings.Fields(suites) {
		if suite != host && !strings.HasPrefix(suite, host+"-") {
			continue // not a Debian suite of this host (another vendor's repository)
		}
		s := release + strings.TrimPrefix(suite, host)
		for _, uri := range strings.Fields(uris) {
			out = append(out, fmt.Sprintf("deb %s %s %s", uri, s, comps))
		}
	}
	return out
}

func hostCodename() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "bookworm"
}

var lookPath = exec.LookPath
