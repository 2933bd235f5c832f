//go:build vm

package lab_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
)

// TestVMBootsWithDataDisk builds (or reuses the cached) box, boots it with Vagrant, runs a
// command over the pinned connection, checks the extra disk is a blank SATA disk, and
// destroys the VM, checking that no domain, volume or qemu process is left. It needs root,
// libvirt and qemu (`make deps`); run it with `make test-vm`.
func TestVMBootsWithDataDisk(t *testing.T) {
	if os.Getenv("LABCTL_VM_TESTS") != "1" {
		t.Skip("SKIP reason: boots a real VM; set LABCTL_VM_TESTS=1 (make test-vm does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	s, err := lab.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	s.Name = "vmtest"
	l, err := lab.Open("..", s)
	if err != nil {
		t.Fatal(err)
	}
	v, closeV, err := lab.NewVagrant(l, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	lab.Destroy(ctx, l, v) // a previous run's leftovers

	start := time.Now()
	phases, err := lab.Boot(ctx, l, v, os.Stdout)
	t.Cleanup(func() {
		gone, err := lab.Destroy(context.Background(), l, v)
		if err != nil {
			t.Errorf("destroy: %v", err)
		}
		t.Logf("destroyed: %v", gone)
		if lab.DomainExists(context.Background(), s.DomainName()) {
			t.Error("the libvirt domain is still defined after destroy")
		}
		out, _ := exec.Command("virsh", "-c", "qemu:///system", "vol-list", lab.Pool).Output()
		if strings.Contains(string(out), s.DomainPrefix()) {
			t.Errorf("volumes left in the pool:\n%s", out)
		}
		if out, err := exec.Command("pgrep", "-f", "guest="+s.DomainPrefix()).Output(); err == nil {
			t.Errorf("qemu still runs for the lab: %s", out)
		}
		if _, err := os.Stat(l.KnownHosts()); err == nil {
			t.Error("the pinned host key survived destroy")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot phases: %v (total %s)", phases, time.Since(start).Round(time.Second))

	comm, err := provision.Connect(ctx, l, v, provision.ConnectOptions{Log: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	defer comm.Close()
	vm := &provision.VM{Conn: comm}
	st, _ := l.LoadState()
	if st.SSHPort == 0 || !strings.HasPrefix(comm.Addr(), "127.0.0.1:") {
		t.Fatalf("SSH must go through a 127.0.0.1 forward, got %s (state %+v)", comm.Addr(), st)
	}
	kernel, err := provision.Sh(ctx, vm, false, "uname -r")
	if err != nil || !strings.HasPrefix(kernel, "6.1.") {
		t.Fatalf("uname -r: %q %v", kernel, err)
	}
	pinned, _ := os.ReadFile(l.KnownHosts())
	if !strings.Contains(string(pinned), "127.0.0.1") {
		t.Fatalf("host key not pinned in %s: %q", l.KnownHosts(), pinned)
	}

	lsblk, err := provision.Sh(ctx, vm, true, "lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,SERIAL,PTTYPE,MOUNTPOINT,UUID")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(t.TempDir(), "lsblk.json"), []byte(lsblk), 0o644)
	mib, _ := s.Disk.SizeMiB()
	d, err := provision.FindDataDisk(lsblk, mib<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Serial != lab.DiskSerial || d.FSType != "" || d.Size != mib<<20 {
		t.Fatalf("data disk %+v: want serial %s, no filesystem, %d bytes", d, lab.DiskSerial, mib<<20)
	}
	blank, err := provision.Sh(ctx, vm, true, provision.Shf("wipefs -n -O TYPE --noheadings %s; lsblk -n -o NAME %s | tail -n +2; readlink -f /sys/class/block/%s", d.Path, d.Path, filepath.Base(d.Path)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(blank, "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "/ata") {
		t.Fatalf("the data disk must be blank and on a SATA (ata) port: %q", blank)
	}
	t.Logf("data disk %s: %d bytes, serial %s, blank, %s", d.Path, d.Size, d.Serial, lines[0])
}
