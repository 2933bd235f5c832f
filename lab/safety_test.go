package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

func testLab(t *testing.T) *Lab {
	t.Helper()
	s, err := spec.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	s.Name = "faultlab"
	l, err := OpenSpec(spec.Source{Root: t.TempDir()}, s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestFaultStateNeverTorn: readers of state.json while it is rewritten over and over, by
// states of different sizes, always read a whole state; and two writers (a verb and the lab's
// agent, each with its own copy) never undo each other's change.
func TestFaultStateNeverTorn(t *testing.T) {
	faulttest.Count(t, "fault", "state-json-read-while-written")
	l := testLab(t)
	if err := l.recordHost("system", 1, "tcg"); err != nil {
		t.Fatal(err)
	}
	other, err := OpenSpec(l.Source, l.Spec) // another process's copy of the same lab
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			vols := make([]string, i%50)
			for j := range vols {
				vols[j] = fmt.Sprintf("labctl-faultlab_volume-%d", j)
			}
			if err := l.recordHost("system", i%60000+1, "tcg"); err != nil {
				t.Error(err)
				return
			}
			if err := other.recordDomain("", "", vols); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); reads++ {
		st, err := readState(l.Path("state.json"))
		if err != nil || st.SSHPort == 0 || st.Libvirt != "system" {
			t.Fatalf("read %d: a partial state.json, or one writer undid the other (%+v): %v", reads, st, err)
		}
	}
	t.Logf("%d whole reads while state.json was rewritten", reads)
}

// TestFaultSymlinkedStateAndLogRefused: a state.json or a log that is a symlink (planted to
// make labctl read or write elsewhere as root) is refused, and its target is not touched.
func TestFaultSymlinkedStateAndLogRefused(t *testing.T) {
	faulttest.Count(t, "input", "symlinked-state-and-log")
	l := testLab(t)
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte(`{"ssh_port": 22}`), 0o644)
	os.Symlink(target, l.Path("state.json"))
	if _, err := OpenSpec(l.Source, l.Spec); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("a lab with a symlinked state.json was opened: %v", err)
	}
	if err := l.recordPort(2222); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("a symlinked state.json was written through: %v", err)
	}
	os.Symlink(target, l.Path("logs", "vagrant.log"))
	if _, _, err := l.Vagrant(nil); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("a symlinked vagrant.log was opened: %v", err)
	}
	os.Symlink(target, l.Path("logs", "provision.log"))
	if f, err := l.OpenLog("provision.log"); err == nil {
		f.WriteString("written through the link\n")
		f.Close()
		t.Error("a symlinked provision.log was opened")
	}
	if data, _ := os.ReadFile(target); string(data) != `{"ssh_port": 22}` {
		t.Errorf("the symlink's target was changed: %q", data)
	}
}

// TestFaultUnsafeLabDirectoryRefused: a lab whose tmp/ is writable by every user (labctl run
// from /: /tmp) or whose directory belongs to another user is refused, and nothing is created.
func TestFaultUnsafeLabDirectoryRefused(t *testing.T) {
	faulttest.Count(t, "input", "unsafe-lab-directory")
	s, _ := spec.Preset("bookworm")
	s.Name = "faultlab"
	root := t.TempDir()
	src := spec.Source{Root: root}
	tmp := filepath.Join(root, "tmp")
	os.Mkdir(tmp, 0o755)
	os.Chmod(tmp, os.ModeSticky|0o777)
	if _, err := OpenSpec(src, s); err == nil || !strings.Contains(err.Error(), "writable by every user (mode 1777)") {
		t.Fatalf("a world-writable tmp/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "faultlab")); err == nil {
		t.Fatal("the lab directory was created in a refused tmp/")
	}
	if os.Geteuid() != 0 {
		t.Skip("the other-owner case needs root (chown)")
	}
	os.Chmod(tmp, 0o755)
	theirs := filepath.Join(tmp, "faultlab")
	os.Mkdir(theirs, 0o755)
	os.Chown(theirs, 65534, 65534)
	if _, err := OpenSpec(src, s); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("another user's lab directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(theirs, "logs")); err == nil {
		t.Fatal("logs/ was created in a refused lab directory")
	}
}

// fakeVirsh puts the fake virsh first on PATH (faulttest.Libvirt), with a fake libvirt of
// the test's own; it returns that directory and the file recording every call.
func fakeVirsh(t *testing.T) (libvirt, calls string) {
	t.Helper()
	f := faulttest.NewLibvirt(t)
	f.Setenv(t)
	if out, err := (host.Libvirt{}).Virsh(context.Background(), "version"); err != nil || !strings.Contains(out, "(fake)") {
		t.Fatalf("the fake virsh does not answer: %v %s", err, out)
	}
	return f.Dir, f.Calls
}

// boxFile writes a .box holding a box.img of size bytes, and Vagrant's unpacked copy of it.
func boxFile(t *testing.T, release string, size int) (file, volume string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		size int
	}{{"metadata.json", 10}, {"box.img", size}, {"vagrant_key", 20}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(f.size)})
		tw.Write(make([]byte, f.size))
	}
	tw.Close()
	file = filepath.Join(t.TempDir(), "labctl.box")
	os.WriteFile(file, buf.Bytes(), 0o600)
	img := vagrantBoxImage("labctl/" + release)
	os.MkdirAll(filepath.Dir(img), 0o755)
	os.WriteFile(img, make([]byte, size), 0o644)
	mtime := time.Unix(1795891761, 0)
	os.Chtimes(img, mtime, mtime)
	return file, "labctl-VAGRANTSLASH-" + release + "_vagrant_box_image_0_1795891761_box.img"
}

// TestFaultShortBoxVolumeReplaced: the pool copy of the box that a new VM boots from is
// checked against box.img in the cached box: an upload cut short (a shorter volume) is
// deleted so that vagrant-libvirt uploads it again; a whole one is kept; while a labctl VM is
// defined it is not deleted but named; a failed check deletes nothing.
func TestFaultShortBoxVolumeReplaced(t *testing.T) {
	faulttest.Count(t, "fault", "short-box-volume-in-pool")
	libvirt, calls := fakeVirsh(t)
	file, vol := boxFile(t, "bookworm", 4096)
	volFile := filepath.Join(libvirt, "volumes", vol)
	deletes := func() int {
		data, _ := os.ReadFile(calls)
		return strings.Count(string(data), " vol-delete ")
	}
	ctx := context.Background()
	var out bytes.Buffer

	os.WriteFile(volFile, []byte("4096\n"), 0o644)
	if err := checkBoxVolume(ctx, host.Libvirt{}, file, "bookworm", &out); err != nil || deletes() != 0 {
		t.Fatalf("a whole copy: %v, %d deletes", err, deletes())
	}

	os.WriteFile(filepath.Join(libvirt, "fail-virsh-vol-info"), nil, 0o644)
	os.WriteFile(volFile, []byte("1000\n"), 0o644)
	if err := checkBoxVolume(ctx, host.Libvirt{}, file, "bookworm", &out); err == nil || deletes() != 0 {
		t.Fatalf("an unreadable size must stop up and delete nothing: %v, %d deletes", err, deletes())
	}
	os.Remove(filepath.Join(libvirt, "fail-virsh-vol-info"))

	os.WriteFile(filepath.Join(libvirt, "domains", "labctl-other_default"), []byte("u\n"), 0o644)
	err := checkBoxVolume(ctx, host.Libvirt{}, file, "bookworm", &out)
	if err == nil || !strings.Contains(err.Error(), "labctl-other_default") || !strings.Contains(err.Error(), "is 1000 bytes, box.img is 4096") || deletes() != 0 {
		t.Fatalf("with a labctl VM defined the short copy must be named, not deleted: %v, %d deletes", err, deletes())
	}
	os.Remove(filepath.Join(libvirt, "domains", "labctl-other_default"))

	if err := checkBoxVolume(ctx, host.Libvirt{}, file, "bookworm", &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(volFile); err == nil || deletes() != 1 {
		t.Fatalf("the short copy was not deleted (%d deletes):\n%s", deletes(), out.String())
	}
	if !strings.Contains(out.String(), "was 1000 bytes, box.img is 4096: deleted") {
		t.Errorf("the deletion was not said:\n%s", out.String())
	}
	if err := checkBoxVolume(ctx, host.Libvirt{}, file, "bookworm", &out); err != nil || deletes() != 1 {
		t.Fatalf("no copy in the pool: nothing to check (%v, %d deletes)", err, deletes())
	}
}

// TestFaultCancelledVagrantLeavesNothing: a cancelled vagrant command (Ctrl-C during `vagrant
// up`) ends with its whole process group: vagrant gets SIGTERM (and may clean up), and no child
// of it is left.
func TestFaultCancelledVagrantLeavesNothing(t *testing.T) {
	faulttest.Count(t, "fault", "cancelled-vagrant")
	libvirt, _ := fakeVirsh(t)
	l := testLab(t)
	os.WriteFile(filepath.Join(libvirt, "hang-vagrant-up"), nil, 0o644)
	v, closeV, err := l.Vagrant(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeV()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Up(ctx, false) }()
	hung := filepath.Join(libvirt, "hung")
	var pid, child int
	for i := 0; i < 200 && child == 0; i++ {
		data, _ := os.ReadFile(hung)
		fmt.Sscan(string(data), &pid, &child)
		time.Sleep(25 * time.Millisecond)
	}
	if child == 0 || !host.Alive(pid) || !host.Alive(child) {
		t.Fatalf("vagrant never hung with a child (%d, %d)", pid, child)
	}
	start := time.Now()
	cancel()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("vagrant up did not return within 10 s of the cancel")
	}
	if err == nil {
		t.Fatal("a cancelled vagrant up must fail")
	}
	if host.Alive(pid) || host.Alive(child) {
		t.Fatalf("vagrant (%d, alive %v) or its child (%d, alive %v) outlived the cancel", pid, host.Alive(pid), child, host.Alive(child))
	}
	t.Logf("vagrant and its child gone %s after the cancel", time.Since(start).Round(time.Millisecond))
}
