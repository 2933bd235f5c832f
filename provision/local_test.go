package provision

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// nsRunner runs commands on this host, as root, inside a private mount namespace held open by
// a sleeping process: mounts made by the steps stay there, and /etc/fstab is a bind-mounted
// temporary file, so the host's own mounts and fstab are never touched.
type nsRunner struct {
	pid int
}

func (n *nsRunner) Run(ctx context.Context, cmd string, opts remote.RunOpts) (remote.Result, error) {
	cmd = strings.TrimPrefix(cmd, "sudo -n ") // already root
	c := exec.CommandContext(ctx, "nsenter", "-t", fmt.Sprint(n.pid), "-m", "--", "sh", "-c", cmd)
	var out, errb strings.Builder
	c.Stdout, c.Stderr, c.Stdin = &out, &errb, opts.Stdin
	err := c.Run()
	r := remote.Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.ExitCode = ee.ExitCode()
		err = nil
	}
	return r, err
}

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP reason: loop devices and mounts need root (CI runs as root)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run `make deps`", tool)
		}
	}
}

// loopDevice attaches a sparse file of size bytes to a free loop device.
func loopDevice(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(mustCreate(t, img), size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func mustCreate(t *testing.T, p string) string {
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// privateNamespace starts the namespace holder with a temporary /etc/fstab.
func privateNamespace(t *testing.T, fstab string) *nsRunner {
	t.Helper()
	holder := exec.Command("unshare", "-m", "--propagation", "private", "sleep", "600")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	n := &nsRunner{pid: holder.Process.Pid}
	deadline := time.Now().Add(5 * time.Second)
	for {
		self, _ := os.Readlink("/proc/self/ns/mnt")
		theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.pid))
		if theirs != "" && theirs != self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the namespace holder did not enter its mount namespace")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The steps' own state on the guest (the format marker under /var/lib/labctl) stays in
	// the namespace too.
	if r, err := n.Run(context.Background(), remote.Shf("mount --bind %s /etc/fstab && mount -t tmpfs labctl-test /var/lib", fstab), remote.RunOpts{}); err != nil || !r.OK() {
		t.Fatalf("bind fstab: %+v %v", r, err)
	}
	return n
}

// TestDiskStepsOnRealBtrfs runs the data-disk, fstab, mount and owner steps for real on a
// loop device: mkfs.btrfs, an fstab line by UUID, `mount MP` from that fstab with
// user_subvol_rm_allowed; a second run changes nothing.
func TestDiskStepsOnRealBtrfs(t *testing.T) {
	needRoot(t, "losetup", "mkfs.btrfs", "blkid", "wipefs", "nsenter", "unshare", "findmnt")
	dir := t.TempDir()
	fstab := mustCreate(t, filepath.Join(dir, "fstab"))
	os.WriteFile(fstab, []byte("# the host's fstab stand-in\n/dev/vda / ext4 rw 0 1"), 0o644) // no final newline
	dev := loopDevice(t, 512<<20)
	ns := privateNamespace(t, fstab)

	s, _ := spec.Preset("bookworm")
	s.Btrfs.MountPoint = filepath.Join(dir, "mnt")
	s.Disk.GuestDevice, s.Disk.Size = dev, "512MiB"
	s.User = "root" // the only user sure to exist here; the owner step then has nothing to do
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: ns}, Facts: Facts{LXCVersion: "5.0.2"}}
	steps := stepsNamed(t, p, "btrfs data disk", "fstab", "mount "+s.Btrfs.MountPoint, "owner of "+s.Btrfs.MountPoint)
	ctx := context.Background()
	var out strings.Builder
	sum, err := RunStepsAhead(ctx, steps, &out, false, 4)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sum.Changed != 3 || sum.OK != 1 {
		t.Fatalf("first run: %s\n%s", sum, out.String())
	}
	uuid := strings.TrimSpace(mustSh(t, ns, remote.Shf("blkid -o value -s UUID %s", dev)))
	got, _ := os.ReadFile(fstab)
	want := fmt.Sprintf("UUID=%s %s btrfs defaults,user_subvol_rm_allowed,nofail,x-systemd.device-timeout=90s 0 1", uuid, s.Btrfs.MountPoint)
	if strings.Count(string(got), want) != 1 || !strings.Contains(string(got), "/dev/vda / ext4 rw 0 1\n") {
		t.Fatalf("fstab:\n%s\nwant one %q (and the old last line kept whole)", got, want)
	}
	mnt := mustSh(t, ns, remote.Shf("findmnt -n -o FSTYPE,OPTIONS --mountpoint %s", s.Btrfs.MountPoint))
	if !strings.HasPrefix(mnt, "btrfs ") || !strings.Contains(mnt, "user_subvol_rm_allowed") {
		t.Fatalf("mounted as %q", mnt)
	}
	// Second run: nothing to do, fstab byte-identical.
	p.disk, p.guest = nil, nil
	out.Reset()
	sum, err = RunStepsAhead(ctx, steps, &out, false, 4)
	if err != nil || sum.Changed != 0 || sum.OK != 4 {
		t.Fatalf("second run: %s %v\n%s", sum, err, out.String())
	}
	again, _ := os.ReadFile(fstab)
	if string(again) != string(got) {
		t.Fatalf("fstab changed on the second run:\n%s", again)
	}
	// Changed options: the lab's line is replaced, exactly one remains, and the mount follows.
	s.Btrfs.Options = []string{"defaults", "user_subvol_rm_allowed", "noatime"}
	p.disk, p.guest = nil, nil
	out.Reset()
	sum, err = RunStepsAhead(ctx, steps, &out, false, 4)
	if err != nil || sum.Changed != 2 {
		t.Fatalf("changed options: %s %v\n%s", sum, err, out.String())
	}
	third, _ := os.ReadFile(fstab)
	want = fmt.Sprintf("UUID=%s %s btrfs defaults,user_subvol_rm_allowed,noatime 0 1", uuid, s.Btrfs.MountPoint)
	if strings.Count(string(third), " "+s.Btrfs.MountPoint+" ") != 1 || !strings.Contains(string(third), want+"\n") || !strings.Contains(string(third), "/dev/vda / ext4 rw 0 1\n") {
		t.Fatalf("fstab after the options changed:\n%s\nwant exactly one line for %s: %q", third, s.Btrfs.MountPoint, want)
	}
	if mnt := mustSh(t, ns, remote.Shf("findmnt -n -o OPTIONS --mountpoint %s", s.Btrfs.MountPoint)); !strings.Contains(mnt, "noatime") {
		t.Fatalf("not remounted with noatime: %q", mnt)
	}
}

// TestDiskStepRefusesRealFilesystem: an ext4 disk is never formatted without --force-format.
func TestDiskStepRefusesRealFilesystem(t *testing.T) {
	needRoot(t, "losetup", "mkfs.ext4", "blkid", "wipefs", "nsenter", "unshare")
	dir := t.TempDir()
	dev := loopDevice(t, 256<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "precious", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	ns := privateNamespace(t, mustCreate(t, filepath.Join(dir, "fstab")))
	s, _ := spec.Preset("bookworm")
	s.Disk.GuestDevice, s.Disk.Size = dev, "256MiB"
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: ns}, Facts: Facts{LXCVersion: "5.0.2"}}
	_, err := RunSteps(context.Background(), []Step{p.diskStep()}, &strings.Builder{}, false)
	if err == nil || !strings.Contains(err.Error(), "refusing to format") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if label := strings.TrimSpace(mustSh(t, ns, remote.Shf("blkid -o value -s LABEL %s", dev))); label != "precious" {
		t.Fatalf("the disk was touched: label %q", label)
	}
}

func mustSh(t *testing.T, r remote.Runner, line string) string {
	t.Helper()
	res, err := r.Run(context.Background(), line, remote.RunOpts{})
	if err != nil || !res.OK() {
		t.Fatalf("%s: %+v %v", line, res, err)
	}
	return strings.TrimSpace(res.Stdout)
}

// stepsNamed picks steps from the provisioner's own list, by name, and checks they stand in
// that order there.
func stepsNamed(t *testing.T, p *Provisioner, names ...string) []Step {
	t.Helper()
	all, err := p.Steps()
	if err != nil {
		t.Fatal(err)
	}
	var out []Step
	for _, st := range all {
		if len(out) < len(names) && st.Name == names[len(out)] {
			out = append(out, st)
		}
	}
	if len(out) != len(names) {
		t.Fatalf("the steps %q are not all in Steps(), in that order", names)
	}
	return out
}

// TestInterruptedFormatIsRedone: a disk labctl began to format (its marker names the disk)
// and that holds what the cut mkfs left is formatted again without --force-format; the same
// disk without the marker is refused.
func TestInterruptedFormatIsRedone(t *testing.T) {
	needRoot(t, "losetup", "mkfs.btrfs", "blkid", "wipefs", "nsenter", "unshare")
	dir := t.TempDir()
	dev := loopDevice(t, 256<<20)
	if out, err := exec.Command("mkfs.btrfs", "-q", "-f", dev).CombinedOutput(); err != nil { // no label: not labctl's
		t.Fatalf("mkfs.btrfs: %v %s", err, out)
	}
	ns := privateNamespace(t, mustCreate(t, filepath.Join(dir, "fstab")))
	s, _ := spec.Preset("bookworm")
	s.Disk.GuestDevice, s.Disk.Size = dev, "256MiB"
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: ns}, Facts: Facts{LXCVersion: "5.0.2"}}
	if _, err := RunSteps(context.Background(), stepsNamed(t, p, "btrfs data disk"), &strings.Builder{}, false); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("without the marker the disk must be refused, got %v", err)
	}
	mustSh(t, ns, remote.Shf("mkdir -p /var/lib/labctl && echo %s > %s", dev, formatMarker))
	p = &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: ns}, Facts: Facts{LXCVersion: "5.0.2"}}
	var out strings.Builder
	sum, err := RunSteps(context.Background(), stepsNamed(t, p, "btrfs data disk"), &out, false)
	if err != nil || sum.Changed != 1 || !strings.Contains(out.String(), "was interrupted") {
		t.Fatalf("an interrupted format must be redone: %s %v\n%s", sum, err, out.String())
	}
	if label := mustSh(t, ns, remote.Shf("blkid -o value -s LABEL %s", dev)); label != DataDiskLabel {
		t.Fatalf("label %q after the redone format", label)
	}
	if m := mustSh(t, ns, remote.Shf("cat %s 2>/dev/null || true", formatMarker)); m != "" {
		t.Fatalf("the marker is left: %q", m)
	}
}
