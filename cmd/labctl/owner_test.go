package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// fakeLab is a lab directory run against the fake vagrant and virsh (faulttest.Libvirt): a
// fake libvirt in its own directory, every call of either recorded.
type fakeLab struct {
	dir, libvirt, calls string
	env                 []string
}

const fakeLabName = "faultlab"

// newFakeLab writes lab.yaml for lab "faultlab" (a named box and a downloaded image, so that
// nothing is built) and puts the fakes first on PATH.
func newFakeLab(t *testing.T) *fakeLab {
	t.Helper()
	fl := faulttest.NewLibvirt(t)
	f := &fakeLab{dir: filepath.Join(t.TempDir(), "lab"), libvirt: fl.Dir, calls: fl.Calls, env: fl.Env}
	os.MkdirAll(f.dir, 0o755)
	out, _, _ := run(t, f.dir, "presets", "show", "bookworm")
	spec := strings.NewReplacer("name: bookworm\n", "name: "+fakeLabName+"\n", "  name: \"\"\n  release: bookworm", "  name: local/box\n  release: \"\"",
		"type: local\n      dist: \"\"\n      release: \"\"\n      arch: \"\"", "type: download\n      dist: debian\n      release: bookworm\n      arch: amd64").Replace(out)
	if err := os.WriteFile(filepath.Join(f.dir, "lab.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// labctl runs the CLI in the lab's directory against the fakes; it is killed after 30 s.
func (f *fakeLab) labctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runEnv(t, f.dir, f.env, append(args, "-f", "lab.yaml")...)
}

func (f *fakeLab) log(t *testing.T) string {
	t.Helper()
	data, _ := os.ReadFile(f.calls)
	return string(data)
}

// domain defines a domain of the lab's name in the fake libvirt, with two disks.
func (f *fakeLab) domain(t *testing.T, uuid string) []string {
	t.Helper()
	name := "labctl-" + fakeLabName + "_default"
	vols := []string{filepath.Join(f.libvirt, "volumes", name+".img"), filepath.Join(f.libvirt, "volumes", name+"-sda.qcow2")}
	for _, v := range vols {
		os.WriteFile(v, []byte("1000\n"), 0o644)
	}
	os.WriteFile(filepath.Join(f.libvirt, "domains", name), []byte(uuid+"\n"), 0o644)
	os.WriteFile(filepath.Join(f.libvirt, "domains", name+".disks"), []byte(strings.Join(vols, "\n")+"\n"), 0o644)
	return append(vols, filepath.Join(f.libvirt, "domains", name))
}

// vagrantTracks writes the lab's Vagrantfile and Vagrant's machine id (the domain's UUID).
func (f *fakeLab) vagrantTracks(t *testing.T, uuid string) {
	t.Helper()
	d := filepath.Join(f.dir, "tmp", fakeLabName)
	os.MkdirAll(filepath.Join(d, ".vagrant", "machines", "default", "libvirt"), 0o755)
	os.WriteFile(filepath.Join(d, "Vagrantfile"), []byte("# fake\n"), 0o644)
	if uuid != "" {
		os.WriteFile(filepath.Join(d, ".vagrant", "machines", "default", "libvirt", "id"), []byte(uuid), 0o644)
	}
}

func (f *fakeLab) set(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.libvirt, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// destructive lists the calls that destroy something.
func destructive(calls string) []string {
	var out []string
	for _, l := range strings.Split(calls, "\n") {
		for _, p := range []string{"vagrant destroy", "virsh destroy", "virsh -c qemu:///system destroy", "virsh -c qemu:///system undefine", "virsh -c qemu:///system vol-delete"} {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return out
}

func mustExist(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is gone: %v", filepath.Base(p), err)
		}
	}
}

const otherUUID = "6f1c2d7e-0000-4000-8000-00000000beef"

// TestFaultUpStatusErrorDestroysNothing (a): `vagrant status` fails (libvirt down after a
// reboot): up stops, says it cannot tell, and issues no destroy, undefine or vol-delete; the
// lab's VM and disks stay.
func TestFaultUpStatusErrorDestroysNothing(t *testing.T) {
	faulttest.Count(t, "fault", "up-status-probe-fails")
	f := newFakeLab(t)
	kept := f.domain(t, otherUUID)
	f.vagrantTracks(t, otherUUID)
	f.set(t, "fail-vagrant-status", "")
	_, errOut, code := f.labctl(t, "up")
	if code == 0 || !strings.Contains(errOut, "cannot tell whether the lab's VM exists, so nothing was changed") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if d := destructive(f.log(t)); len(d) > 0 {
		t.Fatalf("up destroyed on a failed probe: %v", d)
	}
	mustExist(t, kept)
}

// TestFaultUpLibvirtProbeErrorDestroysNothing (a): Vagrant says not_created, but libvirt
// does not answer the first `virsh list` (a daemon still starting): up stops and destroys
// nothing, not even once libvirt answers, although a domain of the lab's name exists.
func TestFaultUpLibvirtProbeErrorDestroysNothing(t *testing.T) {
	faulttest.Count(t, "fault", "up-libvirt-probe-fails")
	f := newFakeLab(t)
	kept := f.domain(t, otherUUID)
	f.vagrantTracks(t, "")
	f.set(t, "fail-virsh-list", "1")
	out, errOut, code := f.labctl(t, "up")
	if code == 0 || !strings.Contains(errOut, "so nothing was changed") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if d := destructive(f.log(t)); len(d) > 0 {
		t.Fatalf("up destroyed after a failed probe: %v\n%s", d, out)
	}
	mustExist(t, kept)
}

// TestFaultUpRefusesForeignDomain (b): a domain of the lab's name with a UUID the lab did not
// record (another checkout's lab of the same name): up refuses, names it, destroys nothing.
func TestFaultUpRefusesForeignDomain(t *testing.T) {
	faulttest.Count(t, "fault", "up-foreign-domain")
	f := newFakeLab(t)
	kept := f.domain(t, otherUUID)
	out, errOut, code := f.labctl(t, "up")
	if code == 0 || !strings.Contains(errOut, "libvirt domain labctl-faultlab_default (UUID "+otherUUID+") is not this lab's") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if d := destructive(f.log(t)); len(d) > 0 {
		t.Fatalf("up destroyed a VM that is not the lab's: %v\n%s", d, out)
	}
	mustExist(t, kept)
}

// TestFaultDestroyRefusesForeignDomain: `labctl destroy` refuses a domain of the lab's name
// that the lab did not create, and removes nothing of it.
func TestFaultDestroyRefusesForeignDomain(t *testing.T) {
	faulttest.Count(t, "fault", "destroy-foreign-domain")
	f := newFakeLab(t)
	kept := f.domain(t, otherUUID)
	out, errOut, code := f.labctl(t, "destroy")
	if code == 0 || !strings.Contains(errOut, "is not this lab's") || !strings.Contains(errOut, "`labctl destroy` changes nothing") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	if d := destructive(f.log(t)); len(d) > 0 {
		t.Fatalf("destroy removed what is not the lab's: %v", d)
	}
	mustExist(t, kept)
}

// TestFaultFailedUpRecordsWhatItCreated: `vagrant up` fails after creating the domain and its
// disks: up records them (the domain's UUID, the volumes) in state.json, and `labctl destroy`
// then removes exactly them, leaving another lab's volume.
func TestFaultFailedUpRecordsWhatItCreated(t *testing.T) {
	faulttest.Count(t, "fault", "failed-up-records-its-vm")
	f := newFakeLab(t)
	other := filepath.Join(f.libvirt, "volumes", "labctl-otherlab_default.img")
	os.WriteFile(other, []byte("1000\n"), 0o644)
	f.set(t, "fail-vagrant-up", "")
	if _, errOut, code := f.labctl(t, "up", "--keep-on-failure"); code == 0 {
		t.Fatal("up must fail when vagrant up does")
	} else if !strings.Contains(errOut, "fake vagrant up failed") {
		t.Fatalf("up failed for another reason: %s", errOut)
	}
	state, _ := os.ReadFile(filepath.Join(f.dir, "tmp", fakeLabName, "state.json"))
	uuid, _ := os.ReadFile(filepath.Join(f.libvirt, "domains", "labctl-faultlab_default"))
	if len(uuid) == 0 || !strings.Contains(string(state), `"domain_uuid": "`+strings.TrimSpace(string(uuid))+`"`) ||
		!strings.Contains(string(state), "labctl-faultlab_default.img") || !strings.Contains(string(state), "labctl-faultlab_default-sda.qcow2") {
		t.Fatalf("state.json does not record the domain (%s) and its volumes:\n%s", uuid, state)
	}
	out, errOut, code := f.labctl(t, "destroy")
	if code != 0 {
		t.Fatalf("destroy: %d\n%s%s", code, out, errOut)
	}
	left, _ := os.ReadDir(filepath.Join(f.libvirt, "volumes"))
	if len(left) != 1 || left[0].Name() != "labctl-otherlab_default.img" {
		t.Fatalf("after destroy the pool holds %v, want only the other lab's volume", left)
	}
	if _, err := os.Stat(filepath.Join(f.libvirt, "domains", "labctl-faultlab_default")); err == nil {
		t.Fatal("the lab's domain survived destroy")
	}
}

// TestLibvirtSessionLab: a lab on the user's own libvirt daemon (--libvirt session) talks to
// qemu:///session only, renders a session Vagrantfile, and records the daemon in its state;
// a later command naming the system daemon is refused, changing nothing, and says how to go
// on; a bad --libvirt names the value.
func TestLibvirtSessionLab(t *testing.T) {
	f := newFakeLab(t)
	f.set(t, "fail-vagrant-up", "")
	if _, errOut, code := f.labctl(t, "up", "--keep-on-failure", "--libvirt", "session"); code == 0 || !strings.Contains(errOut, "fake vagrant up failed") {
		t.Fatalf("up: exit %d: %s", code, errOut)
	}
	virshCalls := func() []string {
		var calls []string
		for _, line := range strings.Split(f.log(t), "\n") {
			if strings.HasPrefix(line, "virsh ") {
				calls = append(calls, line)
			}
		}
		return calls
	}
	calls := virshCalls()
	if len(calls) == 0 {
		t.Fatal("up made no virsh call")
	}
	for _, c := range calls {
		if !strings.HasPrefix(c, "virsh -c qemu:///session ") {
			t.Errorf("a session lab called %q", c)
		}
	}
	state, _ := os.ReadFile(filepath.Join(f.dir, "tmp", fakeLabName, "state.json"))
	if !strings.Contains(string(state), `"libvirt": "session"`) {
		t.Fatalf("state.json does not record the session daemon:\n%s", state)
	}
	vf, _ := os.ReadFile(filepath.Join(f.dir, "tmp", fakeLabName, "Vagrantfile"))
	if !strings.Contains(string(vf), `lv.uri = "qemu:///session"`) || !strings.Contains(string(vf), "lv.qemu_use_session = true") {
		t.Fatalf("the Vagrantfile does not run the VM in the session:\n%s", vf)
	}
	n := len(calls)
	_, errOut, code := f.labctl(t, "destroy", "--libvirt", "system")
	if code == 0 || !strings.Contains(errOut, "created under libvirt session") || !strings.Contains(errOut, "--libvirt session") {
		t.Fatalf("destroy on the other daemon: exit %d: %s", code, errOut)
	}
	if len(virshCalls()) != n {
		t.Fatalf("the refused destroy called virsh: %v", virshCalls()[n:])
	}
	if _, errOut, code := f.labctl(t, "status", "--libvirt", "qemu"); code == 0 || !strings.Contains(errOut, `libvirt: "qemu" is not supported`) {
		t.Fatalf("--libvirt qemu: exit %d: %s", code, errOut)
	}
	if out, errOut, code := f.labctl(t, "destroy", "--libvirt", "session"); code != 0 {
		t.Fatalf("destroy: %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(f.libvirt, "domains", "labctl-faultlab_default")); err == nil {
		t.Fatal("the lab's domain survived destroy")
	}
	for _, c := range virshCalls() {
		if !strings.HasPrefix(c, "virsh -c qemu:///session ") {
			t.Errorf("a session lab called %q", c)
		}
	}
}

// TestUpSaysWhenTheSpecChangedSinceReady: `up` on a running lab whose ready snapshot was taken
// from another spec provisions in place (no silent revert: what the user did in the lab
// stays) and says that `labctl reset` provisions from the snapshot instead.
func TestUpSaysWhenTheSpecChangedSinceReady(t *testing.T) {
	f := newFakeLab(t)
	f.domain(t, otherUUID)
	f.vagrantTracks(t, otherUUID)
	state := `{"domain_uuid": "` + otherUUID + `", "ssh_port": 2222, "ready": {"spec_sum": "another spec", "taken": "2026-11-28T10:00:00Z"}}`
	os.WriteFile(filepath.Join(f.dir, "tmp", fakeLabName, "state.json"), []byte(state), 0o644)
	out, errOut, _ := f.labctl(t, "up", "--keep-on-failure")
	if !strings.Contains(out, "the spec or labctl changed since the ready snapshot (2026-11-28 10:00): provisioning the running lab in place; `labctl reset` provisions from the snapshot instead") {
		t.Fatalf("no word of the changed spec:\n%s%s", out, errOut)
	}
	if strings.Contains(f.log(t), "snapshot-revert") {
		t.Fatal("up reverted the lab to its snapshot")
	}
}

// TestFaultBootTimeoutBootsOnceMore: a guest that does not answer SSH within Vagrant's boot
// timeout (it hung while booting) is booted once more: up says so with the end of that boot's
// console, keeps that console in console-boot1.log and goes on with the second boot. When the
// second boot times out too, up stops there (no third boot) with Vagrant's error and the end
// of the second boot's console. A VM that existed before (a halted lab) is never removed on
// such a failure (its disks hold the lab): it is powered off, before the second boot and after.
func TestFaultBootTimeoutBootsOnceMore(t *testing.T) {
	faulttest.Count(t, "fault", "guest-hangs-while-booting")
	ups := func(f *fakeLab) int { return strings.Count(f.log(t), "vagrant up ") }
	logs := func(name string, f *fakeLab) string {
		data, _ := os.ReadFile(filepath.Join(f.dir, "tmp", fakeLabName, "logs", name))
		return string(data)
	}

	f := newFakeLab(t)
	f.set(t, "boot-timeout-up", "1")
	out, errOut, code := f.labctl(t, "up", "--keep-on-failure")
	if ups(f) != 2 || !strings.Contains(out, "did not answer SSH within Vagrant's boot timeout") ||
		!strings.Contains(out, "smpboot: CPU1: stuck (fake boot 1)") || !strings.Contains(out, "booting once more") {
		t.Fatalf("one hung boot: want a second boot, said with the console's end; %d ups, exit %d:\n%s%s", ups(f), code, out, errOut)
	}
	t.Logf("%s%s", out, errOut)
	if strings.Contains(errOut, "Timed out while waiting") {
		t.Fatalf("the second boot came up, but up failed on the first one's timeout:\n%s", errOut)
	}
	if !strings.Contains(logs("console-boot1.log", f), "fake boot 1") || strings.Contains(logs("console.log", f), "fake boot 1") {
		t.Fatalf("the first boot's console must be kept in console-boot1.log, apart from the second's:\nconsole-boot1.log: %q\nconsole.log: %q",
			logs("console-boot1.log", f), logs("console.log", f))
	}

	// A hung guest that Vagrant left running is powered off before the second boot.
	f = newFakeLab(t)
	f.set(t, "boot-timeout-up", "1")
	f.set(t, "boot-timeout-keeps", "")
	out, errOut, code = f.labctl(t, "up", "--keep-on-failure")
	calls := f.log(t)
	halt, second := strings.Index(calls, "virsh -c qemu:///system destroy "), strings.LastIndex(calls, "vagrant up ")
	if ups(f) != 2 || halt < 0 || halt > second || !strings.Contains(out, "powering the hung guest off") {
		t.Fatalf("a hung guest left running must be powered off before the second boot; exit %d, calls:\n%s\n%s%s", code, calls, out, errOut)
	}

	// A halted lab whose boot hangs twice: the VM and its disks are the user's lab, so
	// Vagrant must not destroy them on the failure (as it does by default).
	f = newFakeLab(t)
	const uuid = "3b0e9c1a-0000-4000-8000-00000000cafe"
	kept := f.domain(t, uuid)
	f.vagrantTracks(t, uuid)
	f.set(t, "off-labctl-"+fakeLabName+"_default", "")
	f.set(t, "boot-timeout-up", "2")
	out, errOut, code = f.labctl(t, "up")
	calls = f.log(t)
	if code == 0 || ups(f) != 2 || strings.Count(calls, "--no-destroy-on-error") != 2 || !strings.Contains(errOut, "Timed out while waiting") {
		t.Fatalf("a halted lab's hung boots: want 2 ups that keep the VM, then the timeout; exit %d, calls:\n%s\n%s%s", code, calls, out, errOut)
	}
	// Powered off (libvirt's destroy, by UUID) before the second boot and after it; nothing removed.
	powerOff := "virsh -c qemu:///system destroy " + uuid
	if strings.Count(calls, powerOff) != 2 || !strings.Contains(out, "the VM and its disks are kept") {
		t.Fatalf("the hung guest must be powered off before the second boot and after it; calls:\n%s\n%s", calls, out)
	}
	for _, d := range destructive(calls) {
		if d != powerOff {
			t.Fatalf("a failed boot of an existing VM removed some of it: %s", d)
		}
	}
	mustExist(t, kept)

	f = newFakeLab(t)
	f.set(t, "boot-timeout-up", "2")
	out, errOut, code = f.labctl(t, "up", "--keep-on-failure")
	if code == 0 || ups(f) != 2 {
		t.Fatalf("two hung boots: want up to fail after the second, exit %d, %d ups:\n%s%s", code, ups(f), out, errOut)
	}
	if !strings.Contains(errOut, "Timed out while waiting for the machine to boot") || !strings.Contains(errOut, "console.log) ended with:") ||
		!strings.Contains(errOut, "stuck (fake boot 1)") || strings.Contains(errOut, "fake boot 2") {
		t.Fatalf("the error must carry Vagrant's timeout and the second boot's console only:\n%s", errOut)
	}
}
