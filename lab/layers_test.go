package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/layer"
)

// layerPool is a pool for the layer tests: the fake virsh's volumes are the session pool's
// directory, holding real qcow2 files (qemu-img): the box's volume, and a lab's root disk
// over it and data disk, each with a ready snapshot and writes after it.
func layerPool(t *testing.T, l *Lab) (libvirt, string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (make deps)")
	}
	fake, _ := fakeVirsh(t)
	t.Setenv("LABCTL_CACHE", t.TempDir())
	xdg := t.TempDir()
	t.Setenv("XDG_DATA_HOME", xdg)
	os.MkdirAll(filepath.Join(xdg, "labctl"), 0o755)
	pool := filepath.Join(fake, "volumes")
	os.MkdirAll(pool, 0o755)
	if err := os.Symlink(pool, filepath.Join(xdg, "labctl", "images")); err != nil {
		t.Fatal(err)
	}
	_, base := boxFile(t, "bookworm", 4096)
	dir := vagrantBoxDir("labctl/bookworm")
	os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(`{"provider":"libvirt","format":"qcow2","virtual_size":8}`), 0o644)
	os.WriteFile(filepath.Join(dir, "Vagrantfile"), []byte("# the box's\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	qemu := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	root := filepath.Join(pool, l.Spec.DomainName()+".img")
	data := filepath.Join(pool, l.Spec.DomainName()+"-sda.qcow2")
	qemu("qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(pool, base), "64M")
	qemu("qemu-io", "-c", "write -P 0xaa 0 4M", filepath.Join(pool, base))
	qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Join(pool, base), "-F", "qcow2", root)
	qemu("qemu-img", "create", "-q", "-f", "qcow2", data, "32M")
	for _, f := range []string{root, data} {
		qemu("qemu-io", "-c", "write -P 0xbb 8M 2M", f)
		qemu("qemu-img", "snapshot", "-c", ReadySnapshot, f)
		qemu("qemu-io", "-c", "write -P 0xcc 16M 2M", f) // after the snapshot: not in the layer
	}
	return libvirt{host.Libvirt{Session: true}}, pool
}

func reads(t *testing.T, file, pattern, offset string) bool {
	t.Helper()
	out, err := exec.Command("qemu-io", "-r", "-c", "read -P "+pattern+" "+offset+" 2M", file).CombinedOutput()
	return err == nil && !strings.Contains(string(out), "Pattern verification failed")
}

// TestFaultCorruptLayerRefusedAndRemade makes a layer from a lab's ready snapshot with real
// qemu-img: the root disk a delta over the box's volume, the data disk whole, both as the
// snapshot has them (not what was written after). A byte changed in a disk is refused by its
// checksum at the next up, the layer dropped and made again from the next provisioned lab. A
// whole layer is used: the box Vagrant boots it by, the lab's data disk an overlay of it, and a
// layer a VM is backed by is not dropped.
func TestFaultCorruptLayerRefusedAndRemade(t *testing.T) {
	faulttest.Count(t, "fault", "corrupted-layer-refused")
	l := testLab(t)
	p, pool := layerPool(t, l)
	ctx := context.Background()
	var out bytes.Buffer
	u := &upRun{lab: l, out: &out, boot: booting{p: p, boxKey: "box-key"}}

	if _, err := u.pickLayer(ctx); err != nil || u.layerIn == nil || u.layer != nil {
		t.Fatalf("no layer cached: %v, in %v, layer %v\n%s", err, u.layerIn, u.layer, out.String())
	}
	u.report.Phases = nil
	if _, err := u.keepLayer(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := LayerStore().Get(u.layerIn.Key())
	if err != nil {
		t.Fatalf("not kept: %v\n%s", err, out.String())
	}
	rootLayer, dataLayer := filepath.Join(pool, rec.Root.Name), filepath.Join(pool, rec.Data.Name)
	info, _ := exec.Command("qemu-img", "info", "-U", rootLayer).CombinedOutput()
	if !strings.Contains(string(info), "backing file: "+filepath.Join(p.virt.PoolDir(), rec.Inputs.BoxVolume)) {
		t.Errorf("the root layer is not a delta over the box's volume:\n%s", info)
	}
	for _, f := range []string{rootLayer, dataLayer} {
		if !reads(t, f, "0xbb", "8M") || !reads(t, f, "0", "16M") {
			t.Errorf("%s does not hold the disk as the snapshot had it", filepath.Base(f))
		}
	}
	if !reads(t, rootLayer, "0xaa", "0") {
		t.Error("the root layer does not read through to the box")
	}
	if err := p.CheckLayer(rec); err != nil {
		t.Fatalf("a whole layer refused: %v", err)
	}

	// A byte changed in the data disk (same size): refused, dropped, made again.
	f, _ := os.OpenFile(dataLayer, os.O_WRONLY, 0)
	f.WriteAt([]byte{0x42}, rec.Data.Size-1)
	f.Close()
	out.Reset()
	u = &upRun{lab: l, out: &out, boot: booting{p: p, boxKey: "box-key"}}
	if _, err := u.pickLayer(ctx); err != nil || u.layer != nil {
		t.Fatalf("a corrupted layer used: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "refused") || !strings.Contains(out.String(), rec.Data.Name) || !strings.Contains(out.String(), "corrupted") {
		t.Errorf("the refusal does not name the disk and why:\n%s", out.String())
	}
	if _, err := LayerStore().Get(rec.Key); err != layer.ErrNone {
		t.Fatalf("the corrupted layer's record stayed: %v", err)
	}
	if _, err := os.Stat(dataLayer); !os.IsNotExist(err) {
		t.Fatalf("the corrupted disk stayed: %v", err)
	}
	if _, err := u.keepLayer(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := LayerStore().Get(rec.Key)
	if err != nil || p.CheckLayer(again) != nil {
		t.Fatalf("the layer was not made again whole: %v\n%s", err, out.String())
	}

	// A whole layer: the new VM boots from it.
	out.Reset()
	u = &upRun{lab: l, out: &out, boot: booting{p: p, boxKey: "box-key"}}
	os.Remove(filepath.Join(pool, l.Spec.DomainName()+"-sda.qcow2")) // the earlier VM's disk
	if _, err := u.pickLayer(ctx); err != nil || u.layer == nil {
		t.Fatalf("a whole layer not used: %v\n%s", err, out.String())
	}
	st := l.State().Layer
	if st == nil || st.Box != "labctl/layer-"+again.Key || st.Disk != l.Spec.DomainName()+"-sda.qcow2" {
		t.Fatalf("state: %+v", st)
	}
	vf, _ := os.ReadFile(l.Path("Vagrantfile"))
	if !bytes.Contains(vf, []byte(`config.vm.box = "labctl/layer-`+again.Key+`"`)) || !bytes.Contains(vf, []byte("allow_existing: true")) {
		t.Errorf("the Vagrantfile does not boot the layer:\n%s", vf)
	}
	img := vagrantBoxImage(st.Box)
	fi, err := os.Stat(img)
	if wantRoot, _ := layerVolumes(again.Key, again.Created); err != nil || wantRoot != again.Root.Name ||
		!strings.Contains(again.Root.Name, "_0_"+itoa(fi.ModTime().Unix())+"_box.img") {
		t.Errorf("the layer's box.img does not name its volume as vagrant-libvirt will: %v, %s, %v", err, again.Root.Name, fi)
	}
	if k, err := os.ReadFile(filepath.Join(filepath.Dir(img), "vmlinuz")); err != nil || string(k) != "kernel" {
		t.Errorf("the layer's box lacks the base box's kernel (direct kernel boot): %v", err)
	}
	if !reads(t, filepath.Join(pool, st.Disk), "0xbb", "8M") {
		t.Error("the lab's data disk does not read through to the layer")
	}
	if err := l.dropLayer(ctx, p, again); err == nil || !strings.Contains(err.Error(), "backed by it") {
		t.Fatalf("a layer a VM is backed by was dropped: %v", err)
	}

	// The box's volume gone (a new build of the box was added): the layer is broken, and prune
	// drops it without being asked for an age or a size, once no VM is backed by it.
	c := &LayerCache{ls: p, store: LayerStore()}
	os.Remove(filepath.Join(pool, st.Disk))
	os.Remove(filepath.Join(pool, again.Inputs.BoxVolume))
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Broken == "" || list[0].InUse {
		t.Fatalf("a layer whose box volume is gone: %+v %v", list, err)
	}
	var said []string
	if err := c.Prune(ctx, 0, 0, false, func(s string) { said = append(said, s) }); err != nil || len(said) != 1 || !strings.HasPrefix(said[0], "dropped "+again.Key) {
		t.Fatalf("prune of a broken layer: %v %v", said, err)
	}
	if _, err := os.Stat(filepath.Join(pool, again.Root.Name)); !os.IsNotExist(err) {
		t.Fatalf("the broken layer's disk stayed: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestFaultLayerDisksAreTheOwners: a layer's disks hold a provisioned lab (its containers, its
// files): kept under a umask of 022 they are still its owner's alone, as the layers an older
// labctl kept with 0644 disks are made when one is next used (that one and every other on
// record), and another user (root's tests) cannot read them by guessing their names (the
// pool's directory is only traversable).
func TestFaultLayerDisksAreTheOwners(t *testing.T) {
	faulttest.Count(t, "fault", "layer-disks-read-by-other-user")
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	l := testLab(t)
	p, pool := layerPool(t, l)
	ctx := context.Background()
	var out bytes.Buffer
	u := &upRun{lab: l, out: &out, boot: booting{p: p, boxKey: "box-key"}}
	if _, err := u.pickLayer(ctx); err != nil || u.layerIn == nil {
		t.Fatalf("no layer inputs: %v\n%s", err, out.String())
	}
	if _, err := u.keepLayer(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := LayerStore().Get(u.layerIn.Key())
	if err != nil {
		t.Fatalf("not kept: %v\n%s", err, out.String())
	}
	disks := []string{filepath.Join(pool, rec.Root.Name), filepath.Join(pool, rec.Data.Name)}
	private := func(when string) {
		t.Helper()
		for _, d := range disks {
			st, err := os.Stat(d)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: the layer's disk %s: %v, mode %v, want 0600", when, filepath.Base(d), err, st.Mode().Perm())
			}
		}
	}
	private("kept")
	// Another layer on record, never used again: tightened too when a layer is used.
	other := rec
	other.Key = "0123456789abcdef"
	other.Root.Name = strings.ReplaceAll(rec.Root.Name, rec.Key, other.Key)
	other.Data.Name = strings.ReplaceAll(rec.Data.Name, rec.Key, other.Key)
	for _, f := range []string{other.Root.Name, other.Data.Name} {
		if err := os.WriteFile(filepath.Join(pool, f), []byte("a disk"), 0o644); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, filepath.Join(pool, f))
	}
	if err := LayerStore().Put(other); err != nil {
		t.Fatal(err)
	}
	for _, d := range disks { // as an older labctl left them
		os.Chmod(d, 0o644)
	}
	os.Remove(filepath.Join(pool, l.Spec.DomainName()+"-sda.qcow2"))
	if _, _, err := p.UseLayer(ctx, l, rec); err != nil {
		t.Fatal(err)
	}
	private("used")
	if os.Geteuid() != 0 {
		return
	}
	os.Chmod(pool, 0o711) // as the system pool's directory
	faulttest.Traversable(t, pool)
	for _, d := range disks {
		if err := faulttest.AsOtherUser(t, "read", d); !errors.Is(err, syscall.EACCES) {
			t.Errorf("another user reading %s: %v, want EACCES", filepath.Base(d), err)
		}
	}
}
