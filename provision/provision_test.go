package provision

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

func TestFindDataDisk(t *testing.T) {
	lv, _ := os.ReadFile("testdata/lsblk-libvirt.json")
	vb, _ := os.ReadFile("testdata/lsblk-virtualbox.json")
	d, err := FindDataDisk(string(lv), 20<<30, "")
	if err != nil || d.Path != "/dev/sda" || d.FSType != "" {
		t.Fatalf("libvirt: %+v %v", d, err)
	}
	d, err = FindDataDisk(string(vb), 300<<30, "")
	if err != nil || d.Path != "/dev/sdb" {
		t.Fatalf("virtualbox by size: %+v %v", d, err)
	}
	d, err = FindDataDisk(string(vb), 1, "/dev/sdb")
	if err != nil || d.Path != "/dev/sdb" {
		t.Fatalf("virtualbox pinned: %+v %v", d, err)
	}
	if _, err := FindDataDisk(string(vb), 40<<30, "/dev/sda"); err == nil || !strings.Contains(err.Error(), "root filesystem") {
		t.Fatalf("pinning the root disk must fail, got %v", err)
	}
	if _, err := FindDataDisk(string(vb), 40<<30, ""); err == nil {
		t.Fatal("the root disk has the size asked for, and must never be picked")
	}
	if _, err := FindDataDisk(string(vb), 7, ""); err == nil || !strings.Contains(err.Error(), "no data disk") {
		t.Fatalf("want 'no data disk', got %v", err)
	}
}

func TestParseFacts(t *testing.T) {
	f, err := ParseFacts("kernel=6.1.0-26-amd64\ndistro=debian\nrelease=bookworm\nlxc=5.0.2\ncgroup=v2\napparmor=Y\nsystemd=yes\nuserns_max=63000\nuserns_clone=1\nuid=1000\n")
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := f.KernelVersion()
	if kv.String() != "6.1.0" || f.LXC().String() != "5.0.2" || !f.Delegated() || !f.UserNS || f.UID != 1000 {
		t.Fatalf("facts %+v kernel %s", f, kv)
	}
	if _, err := ParseFacts("kernel=6.1\nuid=\n"); err == nil {
		t.Fatal("a missing lab user must be an error")
	}
}

func TestContainerWrapping(t *testing.T) {
	fr := newFakeConn()
	fr.answer(`.`, "ok", 0)
	vm := &remote.SSHVM{Conn: fr}
	s, _ := spec.Preset("bookworm")
	ts := Targets(s, vm, Facts{Cgroup: "v2", Systemd: true})
	if ts["box1"].Level() != remote.LevelUnpriv || ts["n1"].Level() != remote.LevelNested {
		t.Fatalf("levels %s %s", ts["box1"].Level(), ts["n1"].Level())
	}
	if _, err := ts["n1"].Run(context.Background(), remote.Cmd{Line: "echo 'hi there'"}); err != nil {
		t.Fatal(err)
	}
	got := fr.cmds[0]
	// Run the sent command with stand-ins for the attach commands: they run their argument.
	dir := t.TempDir()
	for _, a := range []string{"systemd-run", "lxc-attach"} {
		os.WriteFile(dir+"/"+a, []byte("#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n"), 0o755)
	}
	out, err := exec.Command("sh", "-c", "PATH="+dir+":$PATH; "+got).CombinedOutput()
	if err != nil || string(out) != "hi there\n" {
		t.Fatalf("wrapped command %s gave %q, %v", got, out, err)
	}
	if !strings.Contains(got, "systemd-run --user --scope --quiet -p Delegate=yes lxc-attach -n box1") || strings.Contains(got, "sudo") {
		t.Errorf("box1 must be entered from a delegated scope as the user, not root: %s", got)
	}
	if strings.Count(got, "lxc-attach") != 2 {
		t.Errorf("n1 must be entered with lxc-attach inside box1: %s", got)
	}
}

func TestRunStepsStopsAtFirstFailure(t *testing.T) {
	var applied []string
	mk := func(name string, done bool, fail error) Step {
		state := done
		return Step{Name: name,
			Check: func(context.Context) (bool, string, error) { return state, "do " + name, nil },
			Apply: func(context.Context) error {
				applied = append(applied, name)
				if fail != nil {
					return fail
				}
				state = true
				return nil
			}, Hint: "hint for " + name}
	}
	var out strings.Builder
	sum, err := RunSteps(context.Background(), []Step{mk("a", true, nil), mk("b", false, nil), mk("c", false, errors.New("boom")), mk("d", false, nil)}, &out, false)
	var se *StepError
	if !errors.As(err, &se) || se.Step != "c" || !strings.Contains(err.Error(), "hint for c") {
		t.Fatalf("want step c to fail with its hint, got %v", err)
	}
	if sum.Changed != 1 || sum.OK != 1 || strings.Join(applied, ",") != "b,c" {
		t.Fatalf("summary %+v applied %v", sum, applied)
	}
	if !strings.Contains(out.String(), "1 changed, 1 ok") {
		t.Fatalf("output lacks the count:\n%s", out.String())
	}
	// Plan mode applies nothing.
	applied = nil
	out.Reset()
	sum, err = RunSteps(context.Background(), []Step{mk("x", false, nil), mk("y", true, nil)}, &out, true)
	if err != nil || len(applied) != 0 || sum.Changed != 1 || !strings.Contains(out.String(), "plan: 1 changed, 1 ok") {
		t.Fatalf("plan: %+v %v applied %v\n%s", sum, err, applied, out.String())
	}
	// A step whose apply does not make its check pass fails verification.
	never := Step{Name: "never", Check: func(context.Context) (bool, string, error) { return false, "x", nil }, Apply: func(context.Context) error { return nil }}
	if _, err := RunSteps(context.Background(), []Step{never}, &out, false); err == nil || !strings.Contains(err.Error(), "verify") {
		t.Fatalf("want a verify failure, got %v", err)
	}
}

// TestLinesStepIdempotent: ensured lines are appended once, then the step is ok.
func TestLinesStepIdempotent(t *testing.T) {
	content := "vagrant:100000:65536\n" // what Debian's useradd already wrote
	fr := newFakeConn()
	fr.on(`cat /etc/subuid`, func(string) remote.Result { return remote.Result{Stdout: "clean\n" + content} })
	fr.on(`cat > /etc/subuid.labctl-tmp`, func(string) remote.Result { return remote.Result{} })
	vm := &remote.SSHVM{Conn: fr}
	f := render.GuestFile{Path: "/etc/subuid", Lines: []string{"vagrant:100000:65536"}, Owner: "root:root", Mode: 0o644, Owns: "^vagrant:"}
	done, _, err := FileState(context.Background(), vm, f)
	if err != nil || !done {
		t.Fatalf("an existing line must count as done: %v %v", done, err)
	}
	content = "other:1:2"
	done, change, _ := FileState(context.Background(), vm, f)
	if done || !strings.Contains(change, "append 1 line") {
		t.Fatalf("missing line: done=%v change=%q", done, change)
	}
	if err := WriteFile(context.Background(), vm, f); err != nil {
		t.Fatal(err)
	}
	if len(fr.stdin) != 1 || fr.stdin[0] != "other:1:2\nvagrant:100000:65536\n" {
		t.Fatalf("wrote %q", fr.stdin)
	}
}

// TestLinesContent: the lab's stale lines go (one fstab entry for the mount point remains when
// its options change), other lines stay as they are, duplicates of a rendered line and the
// start of a line a cut write left are dropped.
func TestLinesContent(t *testing.T) {
	fstab := render.GuestFile{Path: "/etc/fstab", Lines: []string{"UUID=u /mnt btrfs defaults,compress=zstd 0 1"}, Owns: `^\S+\s+/mnt\s`}
	for _, c := range []struct{ name, in, want, change string }{
		{"options changed", "/dev/vda / ext4 rw 0 1\nUUID=u /mnt btrfs defaults,user_subvol_rm_allowed 0 1\n# keep me\n",
			"/dev/vda / ext4 rw 0 1\n# keep me\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "append 1 line(s), remove 1 stale line(s)"},
		{"no final newline kept whole", "/dev/vda / ext4 rw 0 1", "/dev/vda / ext4 rw 0 1\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "append 1 line(s)"},
		{"cut line", "/dev/vda / ext4 rw 0 1\nUUID=u /mnt btr", "/dev/vda / ext4 rw 0 1\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "drop a cut line"},
		{"duplicate", "UUID=u /mnt btrfs defaults,compress=zstd 0 1\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "UUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "remove 1 stale"},
		{"empty", "", "UUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "append 1 line(s)"},
		{"done", "a\n\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "a\n\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", ""},
		{"another mount point untouched", "UUID=x /mnt2 btrfs defaults 0 1\n", "UUID=x /mnt2 btrfs defaults 0 1\nUUID=u /mnt btrfs defaults,compress=zstd 0 1\n", "append 1"},
	} {
		got, change := linesContent(c.in, fstab)
		if got != c.want || !strings.Contains(change, c.change) || (c.change == "" && change != "") {
			t.Errorf("%s: got %q (%q), want %q (%q)", c.name, got, change, c.want, c.change)
		}
	}
}

// TestDiskStepRefusesData: a disk with a filesystem is never formatted without --force-format.
func TestDiskStepRefusesData(t *testing.T) {
	lsblk, _ := os.ReadFile("testdata/lsblk-libvirt.json")
	withFS := strings.Replace(string(lsblk), `"fstype": null,
         "serial": "labctl-data"`, `"fstype": "ext4",
         "serial": "labctl-data"`, 1)
	fr := newFakeConn()
	fr.answer(`lsblk -J`, withFS, 0)
	fr.answer(`wipefs -n`, "ext4\n", 0)
	fr.answer(`blkid -p`, "DEVNAME=/dev/sda\nUUID=1234\nTYPE=ext4\n", 0)
	fr.answer(`formatting-data-disk`, "", 0)
	fr.answer(`mkfs.btrfs`, "", 0)
	s, _ := spec.Preset("bookworm")
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: fr}, Opts: Options{}}
	step := p.diskStep()
	done, _, err := step.Check(context.Background())
	if err != nil || done {
		t.Fatalf("check: %v %v", done, err)
	}
	err = step.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refusing to format") || !strings.Contains(err.Error(), "--force-format") {
		t.Fatalf("want a refusal naming --force-format, got %v", err)
	}
	if fr.sent("mkfs.btrfs") != 0 {
		t.Fatal("mkfs.btrfs was run on a disk holding data")
	}
	p.Opts.ForceFormat = true
	if err := step.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fr.sent("mkfs.btrfs") != 1 {
		t.Fatal("--force-format must format")
	}
}

// TestNestedBusyboxOnOldLXC: with LXC < 5, the busybox template's mknod calls (forbidden in
// box1's user namespace) are turned into no-ops; the command really runs through a shell.
func TestNestedBusyboxOnOldLXC(t *testing.T) {
	s, _ := spec.Preset("bullseye")
	fr := newFakeConn()
	fr.answer(`.`, "", 0)
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: fr}, Facts: Facts{LXCVersion: "4.0.6", Cgroup: "v2", Systemd: true, UID: 1000}}
	if err := p.createNestedStep(s.Container("n1")).Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	sent := fr.cmds[len(fr.cmds)-1]
	dir := t.TempDir()
	for _, a := range []string{"systemd-run", "lxc-attach"} {
		os.WriteFile(dir+"/"+a, []byte("#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n"), 0o755)
	}
	// A template that fails as LXC 4's does when mknod is refused.
	os.WriteFile(dir+"/lxc-create", []byte("#!/bin/sh\nmknod /nonexistent-dir/tty c 5 0 || { echo 'ERROR: Failed to install rootfs' >&2; exit 1; }\n"), 0o755)
	out, err := exec.Command("sh", "-c", "PATH="+dir+":$PATH; "+sent).CombinedOutput()
	if err != nil {
		t.Fatalf("the shimmed create failed: %v %s\n%s", err, out, sent)
	}
	// LXC 5 gets the plain command.
	p.Facts.LXCVersion = "5.0.2"
	p.createNestedStep(s.Container("n1")).Apply(context.Background())
	if strings.Contains(fr.cmds[len(fr.cmds)-1], "mknod") {
		t.Fatal("LXC 5 needs no mknod shim")
	}
}

// TestStepsFollowTheRecipe: the bookworm lab's steps, in the recipe's order, and every file
// the renderer returns written by exactly one step of the same name.
func TestStepsFollowTheRecipe(t *testing.T) {
	s, _ := spec.Preset("bookworm")
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: newFakeConn()}, Facts: Facts{LXCVersion: "5.0.2", Cgroup: "v2", Systemd: true, UID: 1000}}
	steps, err := p.Steps()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range steps {
		names = append(names, st.Name)
	}
	want := []string{"packages", "preflight", "btrfs data disk", "fstab", "mount /mnt", "owner of /mnt",
		"subuid", "subgid", "user default.conf", "user lxc.conf", "lxc-usernet", "lxc-net config",
		"autostart unit", "user manager order", "sshd keepalive", "bridge lxcbr0", "user systemd (linger)", "autostart enabled", "create box1", "box1 config", "start box1",
		"box1:eth0", "box1:lxc-net", "box1:default.conf", "box1 address", "lxc inside box1",
		"create n1 in box1", "n1 config", "start n1"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("steps (-want +got):\n%s", diff)
	}
}

// TestEveryRenderedFileHasAStep, for every preset and every LXC dialect it may meet.
func TestEveryRenderedFileHasAStep(t *testing.T) {
	for _, name := range spec.PresetNames() {
		s, _ := spec.Preset(name)
		p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: newFakeConn()}, Facts: Facts{LXCVersion: s.LXC.Version}}
		steps, err := p.Steps()
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, st := range steps {
			count[st.Name]++
		}
		files, err := render.Guest(s, render.GuestInputs{LXCVersion: s.LXC.Version})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.Step == "" || count[f.Step] != 1 {
				t.Errorf("%s: %s (step %q) is written by %d steps", name, f.VMPath, f.Step, count[f.Step])
			}
		}
	}
}
