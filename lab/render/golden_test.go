package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/golden"
	"github.com/labctl/labctl/lab/spec"
)

// fixedInputs are the host values of golden renderings.
var fixedInputs = VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: "labctl"}

// renderAll flattens a rendering into one text, file by file, as `labctl render` lays it out.
func renderAll(t *testing.T, s *spec.Spec, lxc string) []byte {
	t.Helper()
	in := fixedInputs
	if s.Box.Release != "" {
		in.SSHKey = "/var/cache/labctl/vagrant.d/boxes/" + strings.ReplaceAll(s.BoxName(), "/", "-VAGRANTSLASH-") + "/0/libvirt/vagrant_key"
	}
	in.Console = "/labs/tmp/" + s.Name + "/logs/console.log"
	r, err := Render(s, in, GuestInputs{LXCVersion: lxc, DiskUUID: ""})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrote, err := r.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, w := range wrote {
		data, err := os.ReadFile(filepath.Join(dir, w))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("=== " + w + "\n")
		b.Write(data)
	}
	return []byte(b.String())
}

func TestGoldenPresets(t *testing.T) {
	for _, name := range spec.PresetNames() {
		t.Run(name, func(t *testing.T) {
			s, err := spec.Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("presets", name+".txt"), renderAll(t, s, s.LXC.Version))
		})
	}
}

// TestGoldenSession renders the default lab's Vagrantfile for the user's own libvirt daemon.
func TestGoldenSession(t *testing.T) {
	s, err := spec.Preset(spec.DefaultPreset)
	if err != nil {
		t.Fatal(err)
	}
	in := fixedInputs
	in.Session = true
	in.Console = "/home/u/labctl/tmp/default/logs/console.log"
	vf, err := Vagrantfile(s, in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(vf, []byte(`lv.uri = "qemu:///session"`)) {
		t.Fatalf("the session Vagrantfile does not name qemu:///session:\n%s", vf)
	}
	golden.Check(t, "vagrantfile-session.txt", vf)
	in.Session = false
	if vf, _ := Vagrantfile(s, in); bytes.Contains(vf, []byte("qemu_use_session")) {
		t.Fatalf("the system Vagrantfile asks for a session:\n%s", vf)
	}
}

// TestGoldenLayer renders the default lab's Vagrantfile for a VM that boots from a
// provisioned layer: the layer's box, and the data disk labctl made, allowed to exist.
func TestGoldenLayer(t *testing.T) {
	s, err := spec.Preset(spec.DefaultPreset)
	if err != nil {
		t.Fatal(err)
	}
	in := fixedInputs
	in.LayerBox, in.LayerDisk = "labctl/layer-0123456789abcdef", s.DomainName()+"-sda.qcow2"
	vf, err := Vagrantfile(s, in)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "vagrantfile-layer.txt", vf)
}

// TestGoldenDialects renders the bookworm lab's guest files in the dialect of each LXC
// version, and once with AppArmor generated.
func TestGoldenDialects(t *testing.T) {
	for _, v := range []string{"1.1.5", "2.0.11", "3.0.4", "4.0.6", "5.0.2", "6.0.4", "7.0.0"} {
		for _, aa := range []string{"unconfined", "generated"} {
			t.Run(v+"-"+aa, func(t *testing.T) {
				s, err := spec.Preset("bookworm")
				if err != nil {
					t.Fatal(err)
				}
				s.Container("box1").AppArmor = aa
				g, err := Guest(s, GuestInputs{LXCVersion: v, DiskUUID: "0f2c6f6e-1111-4a3b-9c1d-2e7e0d1b5a77"})
				if err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				for _, f := range g {
					b.WriteString("=== " + f.GuestPath())
					if f.IsLines() {
						b.WriteString(" (lines)\n" + strings.Join(f.Lines, "\n") + "\n")
					} else {
						b.WriteString("\n" + string(f.Content))
					}
				}
				golden.Check(t, filepath.Join("dialects", "lxc-"+v+"-"+aa+".txt"), []byte(b.String()))
			})
		}
	}
}

// TestBookwormHasNoLegacyKey: the LXC 5 dialect never uses a key LXC 3.0 removed.
func TestBookwormHasNoLegacyKey(t *testing.T) {
	s, _ := spec.Preset("bookworm")
	got := string(renderAll(t, s, "5.0.2"))
	for _, k := range []string{"lxc.id_map", "lxc.network.", "lxc.aa_profile", "lxc.utsname", "lxc.rootfs ="} {
		if strings.Contains(got, k) {
			t.Errorf("bookworm rendering has legacy key %s", k)
		}
	}
	for _, k := range []string{"lxc.idmap = u 0 100000 65536", "lxc.net.0.link = lxcbr0", "lxc.include = /usr/share/lxc/config/nesting.conf", "lxc.apparmor.profile = unchanged"} {
		if !strings.Contains(got, k) {
			t.Errorf("bookworm rendering lacks %s", k)
		}
	}
}

// TestTrustyRecipeLines: the trusty preset renders the recipe's exact lines.
func TestTrustyRecipeLines(t *testing.T) {
	s, _ := spec.Preset("trusty")
	got := string(renderAll(t, s, s.LXC.Version))
	for _, l := range []string{
		"lxc.id_map = u 0 100000 65536\nlxc.id_map = g 0 100000 65536\nlxc.network.type = veth\nlxc.network.link = lxcbr0\nlxc.network.flags = up\nlxc.network.hwaddr = 00:16:3e:xx:xx:xx\n",
		"lxc.lxcpath = /mnt\n", "vagrant:100000:65536\n", "/dev/sdb /mnt btrfs defaults 0 1\n", "vagrant veth lxcbr0 10\n",
		"lxc.mount.auto = cgroup\nlxc.aa_profile = lxc-container-default-with-nesting\n",
		`vb.customize ["createhd", "--filename", file, "--size", 300 * 1024]`,
		`vb.customize ["storageattach", :id, "--storagectl", "SATA Controller", "--port", 1, "--device", 0, "--type", "hdd", "--medium", file]`,
	} {
		if !strings.Contains(got, l) {
			t.Errorf("trusty rendering lacks the recipe's %q", l)
		}
	}
}

func TestRubyQuoting(t *testing.T) {
	if got := rb(`a"b#{x}\`); got != `"a\"b\#{x}\\"` {
		t.Fatalf("rb quoted to %s", got)
	}
}

func TestUnsupportedProvider(t *testing.T) {
	s, _ := spec.Preset("bookworm")
	s.Provider = "hyperv"
	if _, err := Vagrantfile(s, fixedInputs); err == nil || !strings.Contains(err.Error(), `"hyperv" is not supported`) {
		t.Fatalf("want a clear error for provider hyperv, got %v", err)
	}
}

// TestConsoleLog: the guest's console goes to the file named, which must be absolute (libvirt
// would resolve a relative one in a directory of its own); none is named when none is given.
func TestConsoleLog(t *testing.T) {
	s, _ := spec.Preset("bookworm")
	in := fixedInputs
	in.Console = "/labs/tmp/bookworm/logs/console.log"
	vf, err := Vagrantfile(s, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `lv.serial :type => "file", :source => {:path => "/labs/tmp/bookworm/logs/console.log"}`; !strings.Contains(string(vf), want) {
		t.Fatalf("the Vagrantfile does not keep the console in the file named (want %s):\n%s", want, vf)
	}
	in.Console = "tmp/bookworm/logs/console.log"
	if _, err := Vagrantfile(s, in); err == nil || !strings.Contains(err.Error(), `console log "tmp/bookworm/logs/console.log" is not an absolute path`) {
		t.Fatalf("want a clear error for a relative console log, got %v", err)
	}
	in.Console = ""
	if vf, _ := Vagrantfile(s, in); strings.Contains(string(vf), "lv.serial") {
		t.Fatalf("no console file named, but the Vagrantfile keeps one:\n%s", vf)
	}
}

// TestCgroupV1CmdLine: a lab on cgroup v1 boots the box's kernel command line with systemd's
// switch to v1 (and, for trixie's systemd 257, the force it wants too); one on v2 keeps the
// box's own; the box's own is the one build-box.sh writes.
func TestCgroupV1CmdLine(t *testing.T) {
	script, err := os.ReadFile("../build/scripts/build-box.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `lv.cmd_line = "`+BoxCmdLine+`"`) {
		t.Fatalf("build-box.sh does not write the box's command line %q", BoxCmdLine)
	}
	in := VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: "labctl"}
	for _, c := range []struct{ preset, cgroup, want string }{
		{"bookworm", "", ""},
		{"bookworm", "v1", `lv.cmd_line = "` + BoxCmdLine + ` systemd.unified_cgroup_hierarchy=0"`},
		{"trixie", "v1", `lv.cmd_line = "` + BoxCmdLine + ` systemd.unified_cgroup_hierarchy=0 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"`},
	} {
		s, _ := spec.Preset(c.preset)
		s.Box.Cgroup = c.cgroup
		vf, err := Vagrantfile(s, in)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(string(vf), "lv.cmd_line")
		if (c.want == "") == got || (c.want != "" && !strings.Contains(string(vf), c.want)) {
			t.Errorf("%s, cgroup %q: want %q in the Vagrantfile, got cmd_line %v", c.preset, c.cgroup, c.want, got)
		}
	}
}

// TestMountUnit: systemd-escape --path --suffix=mount, as systemd 252 printed it.
func TestMountUnit(t *testing.T) {
	for in, want := range map[string]string{
		"/mnt": "mnt.mount", "/srv/data": "srv-data.mount", "/data/lab-1": `data-lab\x2d1.mount`,
		"/media/a b/": `media-a\x20b.mount`, "/": "-.mount", "/srv/.x": "srv-.x.mount", "/.x": `\x2ex.mount`,
	} {
		if got := MountUnit(in); got != want {
			t.Errorf("MountUnit(%q) = %q, want %q", in, got, want)
		}
	}
}
