package host

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
)

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
	if !cpuVirt() {
		return false, "the CPU shows neither vmx nor svm (KVM here cannot boot a stock kernel)"
	}
	return true, ""
}

// cpuVirt reports whether /proc/cpuinfo shows vmx or svm.
func cpuVirt() bool {
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(cpu), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, fl := range strings.Fields(line) {
				if fl == "vmx" || fl == "svm" {
					return true
				}
			}
		}
	}
	return false
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

// MemAvailableMiB is the memory the kernel says is available for new work (MemAvailable in
// /proc/meminfo), in MiB; 0 when it cannot be read.
func MemAvailableMiB() int { return meminfoKiB("MemAvailable") / 1024 }

// meminfoKiB is one field of /proc/meminfo, in KiB; 0 when it cannot be read.
func meminfoKiB(field string) int {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kib int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kib)
			return kib
		}
	}
	return 0
}

// Describe names this machine for reports: its OS, cores, memory and how VMs run on it.
func Describe() string {
	name := "Linux"
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				name = strings.Trim(v, `"`)
			}
		}
	}
	memGiB := (meminfoKiB("MemTotal") + 512*1024) / (1024 * 1024)
	accel, _, _ := Accel("auto")
	return fmt.Sprintf("%s, %d cores, %d GiB, VMs under %s", name, runtime.NumCPU(), memGiB, strings.ToUpper(accel))
}
