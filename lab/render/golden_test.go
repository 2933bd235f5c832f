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
