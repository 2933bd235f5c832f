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
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
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
	s, err := spec.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	s.Name = "vmtest"
	l, err := lab.OpenSpec(spec.Source{Root: ".."}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, closeV, err := l.Vagrant(os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	if _, err := l.Destroy(ctx, os.Stdout); err != nil { // a previous run's leftovers
		t.Fatal(err)
	}

	start := time.Now()
	booted, err := l.Boot(ctx, os.Stdout)
	before, phases := booted.Before, booted.Phases
	t.Cleanup(func() { destroyLeavesNothing(t, l) })
	if err != nil {
		t.Fatal(err)
	}
	if before != "not_created" {
		t.Fatalf("the VM existed before the test booted it: %s", before)
	}
	t.Logf("boot phases: %v (total %s)", phases, time.Since(start).Round(time.Second))
	if console, err := os.ReadFile(l.Log(labdir.ConsoleLog)); err != nil || !strings.Contains(string(console), "Linux version") {
		t.Errorf("the guest's console is not kept in %s (%v): %d bytes, no kernel banner", l.Log(labdir.ConsoleLog), err, len(console))
	}

	comm, err := l.DialSSH(ctx, lab.ConnectOptions{Log: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	defer comm.Close()
	vm := &remote.SSHVM{Conn: comm}
	st := l.State()
	if st.SSHPort == 0 || !strings.HasPrefix(comm.Addr(), "127.0.0.1:") {
		t.Fatalf("SSH must go through a 127.0.0.1 forward, got %s (state %+v)", comm.Addr(), st)
	}
	kernel, err := remote.Sh(ctx, vm, false, "uname -r")
	if err != nil || !strings.HasPrefix(kernel, "6.1.") {
		t.Fatalf("uname -r: %q %v", kernel, err)
	}
	pinned, _ := os.ReadFile(l.KnownHosts())
	if !strings.Contains(string(pinned), "127.0.0.1") {
		t.Fatalf("host key not pinned in %s: %q", l.KnownHosts(), pinned)
	}
	forwardOnlyOnLoopback(t, st.SSHPort)

	lsblk, err := remote.Sh(ctx, vm, true, "lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,SERIAL,PTTYPE,MOUNTPOINT,UUID")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(t.TempDir(), "lsblk.json"), []byte(lsblk), 0o644)
	mib, _ := s.Disk.SizeMiB()
	d, err := provision.FindDataDisk(lsblk, mib<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Serial != render.DiskSerial || d.FSType != "" || d.Size != mib<<20 {
		t.Fatalf("data disk %+v: want serial %s, no filesystem, %d bytes", d, render.DiskSerial, mib<<20)
	}
	blank, err := remote.Sh(ctx, vm, true, remote.Shf("wipefs -n -O TYPE --noheadings %s; lsblk -n -o NAME %s | tail -n +2; readlink -f /sys/class/block/%s", d.Path, d.Path, filepath.Base(d.Path)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(blank, "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "/ata") {
		t.Fatalf("the data disk must be blank and on a SATA (ata) port: %q", blank)
	}
	t.Logf("data disk %s: %d bytes, serial %s, blank, %s", d.Path, d.Size, d.Serial, lines[0])

	// The lab halted, then booted with a timeout no TCG guest meets: both boots time out, and
	// the VM with its disks must still be there, off as it was (Vagrant's default on a failed
	// `up` is to destroy the VM; labctl tells it not to, and powers the hung guest off itself).
	// Progress goes to out, which a failure shows.
	if accel, _, err := host.Accel("auto"); err != nil || accel != "tcg" {
		t.Logf("not booting the halted lab with a 10 s timeout: under %s (%v) a guest may answer within it", accel, err)
		return
	}
	comm.Close()
	if err := v.Halt(ctx); err != nil {
		t.Fatal(err)
	}
	s.BootTimeout = 10
	var out strings.Builder
	booted, err = l.Boot(ctx, &out)
	if booted.Before != "shutoff" || !vagrant.IsBootTimeout(err) || strings.Count(out.String(), "vm: vagrant up ") != 2 {
		t.Fatalf("the halted lab's boots with a 10 s timeout: want two, timed out; was %s, got %v\n%s", booted.Before, err, out.String())
	}
	virt, err := host.LibvirtFor(s.Libvirt)
	if err != nil {
		t.Fatal(err)
	}
	if uuid, err := virt.DomainUUID(ctx, s.DomainName()); err != nil || uuid != st.DomainUUID {
		t.Fatalf("the halted lab's VM (%s) is gone after its boots timed out: libvirt has %q (%v)", st.DomainUUID, uuid, err)
	}
	vols, err := virt.Virsh(ctx, "vol-list", host.Pool)
	if err != nil || !strings.Contains(vols, s.DomainPrefix()+"default-sda.qcow2") {
		t.Fatalf("the halted lab's data disk is gone after its boots timed out (%v):\n%s", err, vols)
	}
	if state, err := l.VMState(ctx); err != nil || state != "shutoff" {
		t.Fatalf("the halted lab must be left off after its failed boots, not %q (%v)", state, err)
	}
	t.Logf("the halted lab's two timed-out boots kept its VM %s and its data disk, and left it off", st.DomainUUID)
}

// destroyLeavesNothing destroys the lab and checks that no domain, volume, qemu process or
// pinned host key of it is left.
func destroyLeavesNothing(t *testing.T, l *lab.Lab) {
	s := l.Spec
	gone, err := l.Destroy(context.Background(), os.Stdout)
	if err != nil {
		t.Errorf("destroy: %v", err)
	}
	t.Logf("destroyed: %v", gone)
	virt, err := host.LibvirtFor(s.Libvirt)
	if err != nil {
		t.Fatal(err)
	}
	if uuid, err := virt.DomainUUID(context.Background(), s.DomainName()); err != nil || uuid != "" {
		t.Errorf("the libvirt domain is still defined after destroy (or libvirt did not say: %v)", err)
	}
	out, _ := exec.Command("virsh", "-c", virt.URI(), "vol-list", host.Pool).Output()
	if strings.Contains(string(out), s.DomainPrefix()) {
		t.Errorf("volumes left in the pool:\n%s", out)
	}
	if out, err := exec.Command("pgrep", "-f", "guest="+s.DomainPrefix()).Output(); err == nil {
		t.Errorf("qemu still runs for the lab: %s", out)
	}
	if _, err := os.Stat(l.KnownHosts()); err == nil {
		t.Error("the pinned host key survived destroy")
	}
}

// TestVMBootTimeoutBootsOnceMore boots a real VM with a boot timeout it cannot meet (10 s under
// TCG): Vagrant gives up on its SSH, vagrant-libvirt removes the domain, up boots it once more
// (the first boot's console kept), gives up after that second boot with Vagrant's error and
// the console's end, and destroy leaves nothing of either boot.
func TestVMBootTimeoutBootsOnceMore(t *testing.T) {
	if os.Getenv("LABCTL_VM_TESTS") != "1" {
		t.Skip("SKIP reason: boots a real VM; set LABCTL_VM_TESTS=1 (make test-vm does)")
	}
	if accel, _, err := host.Accel("auto"); err != nil || accel != "tcg" {
		t.Skipf("SKIP reason: under %s (%v) a guest may well answer SSH within 10 s", accel, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s, err := spec.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	s.Name, s.BootTimeout = "vmboot", 10
	l, err := lab.OpenSpec(spec.Source{Root: ".."}, s)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := l.Destroy(ctx, &out); err != nil { // a previous run's leftovers
		t.Fatal(err)
	}
	os.Remove(l.Log(labdir.ConsoleBoot1))
	start := time.Now()
	_, err = l.Boot(ctx, &out)
	t.Cleanup(func() { destroyLeavesNothing(t, l) })
	t.Logf("up failed after %s, as it should", time.Since(start).Round(time.Second))
	if !vagrant.IsBootTimeout(err) || !strings.Contains(err.Error(), "console.log) ended with:") {
		t.Fatalf("want Vagrant's boot timeout with the console's end, got %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "vm: vagrant up "); n != lab.BootAttempts || !strings.Contains(out.String(), "vm: booting once more") {
		t.Fatalf("want %d boots, the second one announced; got %d:\n%s", lab.BootAttempts, n, out.String())
	}
	if first, err := os.ReadFile(l.Log(labdir.ConsoleBoot1)); err != nil || !strings.Contains(string(first), "Linux version") {
		t.Fatalf("the first boot's console is not kept (%v): %d bytes", err, len(first))
	}
}

// TestVMVagrantValidate runs the real `vagrant validate` on the renderings of both providers
// (starting libvirtd, as labctl does, for libvirt), and checks that a VirtualBox setting typo
// is caught through the stub VBoxManage. It starts daemons, so it is behind the VM gate.
func TestVMVagrantValidate(t *testing.T) {
	if os.Getenv("LABCTL_VM_TESTS") != "1" {
		t.Skip("SKIP reason: starts libvirtd; set LABCTL_VM_TESTS=1 (make test-vm does)")
	}
	ctx := context.Background()
	for _, name := range []string{"trusty", "bookworm"} {
		s, _ := spec.Preset(name)
		out, err := lab.VagrantValidate(ctx, s, os.Stdout)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(out, "validated successfully") {
			t.Fatalf("%s: vagrant said %q", name, out)
		}
	}
	// A typo in a VirtualBox setting must be rejected.
	s, _ := spec.Preset("trusty")
	vf, err := render.Vagrantfile(s, render.VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: host.Pool})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := strings.Replace(string(vf), "vb.cpus = 2", "vb.cpuz = 2", 1)
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	stub := filepath.Join(dir, "bin")
	os.MkdirAll(stub, 0o755)
	os.WriteFile(filepath.Join(stub, "VBoxManage"), []byte("#!/bin/sh\necho 7.0.14r161095\n"), 0o755)
	v := &vagrant.Driver{Dir: dir}
	_, err = v.Validate(ctx, "VAGRANT_DEFAULT_PROVIDER=virtualbox", "PATH="+stub+":"+os.Getenv("PATH"))
	if err == nil || !strings.Contains(err.Error(), "cpuz") {
		t.Fatalf("a vb.cpuz typo was not caught: %v", err)
	}
}

// TestVMLayerKeptAndBootedFrom brings the default lab up from its box (a fresh layer asked
// for: provisioning changes the VM, the layer is kept), destroys it, and brings it up again:
// the new VM boots from the layer, provisioning finds nothing to change, both levels run, and
// the VM has a host key of its own. It leaves the layer for the suite's labs of the same spec.
func TestVMLayerKeptAndBootedFrom(t *testing.T) {
	if os.Getenv("LABCTL_VM_TESTS") != "1" {
		t.Skip("SKIP reason: boots two real VMs; set LABCTL_VM_TESTS=1 (make test-vm does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	s, err := spec.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	s.Name = "vmlayer"
	l, err := lab.OpenSpec(spec.Source{Root: ".."}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Destroy(ctx, os.Stdout); err != nil { // a previous run's leftovers
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyLeavesNothing(t, l) })
	first, err := l.Up(ctx, os.Stdout, lab.UpOptions{FreshLayer: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.Layer != "" || first.Summary.Changed == 0 {
		t.Fatalf("the first up should provision from the box: layer %q, %s", first.Layer, first.Summary)
	}
	key1, _ := os.ReadFile(l.KnownHosts())
	destroyLeavesNothing(t, l)
	second, err := l.Up(ctx, os.Stdout, lab.UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up from the box %s (provision %s); from the layer %s (provision %s)", first.Took.Round(time.Second),
		first.TookFor(lab.PhaseProvision).Round(time.Second), second.Took.Round(time.Second), second.TookFor(lab.PhaseProvision).Round(time.Second))
	if second.Layer == "" || second.Summary.Changed != 0 {
		t.Fatalf("the second up should boot from the layer and change nothing: layer %q, %s", second.Layer, second.Summary)
	}
	running := 0
	for _, lv := range second.Levels {
		if strings.Contains(lv.What, "RUNNING") {
			running++
		}
	}
	if running != 2 {
		t.Fatalf("want box1 and n1 running, got %+v", second.Levels)
	}
	if key2, _ := os.ReadFile(l.KnownHosts()); len(key2) == 0 || string(key2) == string(key1) {
		t.Fatalf("the VM booted from the layer has the host key of the one that made it (or none):\n%s", key2)
	}
	rec, err := lab.LayerStore().Get(second.Layer)
	if err != nil || rec.Used.IsZero() {
		t.Fatalf("the layer's record does not note its use: %v", err)
	}
	// The disks of the box and of the layer (a provisioned lab) are their owner's alone.
	virt, err := host.LibvirtFor(s.Libvirt)
	if err != nil {
		t.Fatal(err)
	}
	pool := virt.PoolDir()
	for _, f := range []string{filepath.Join(filepath.Dir(host.VagrantBoxKey("labctl/bookworm")), "box.img"),
		filepath.Join(pool, rec.Root.Name), filepath.Join(pool, rec.Data.Name)} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v: others may read it", f, err, st.Mode().Perm())
		}
	}
}
