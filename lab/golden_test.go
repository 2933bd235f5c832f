package lab

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run `go test ./lab -update` to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s\nrun `go test ./lab -update` if the change is intended", p, diff)
	}
}

// fixedInputs are the host values of golden renderings.
var fixedInputs = VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: Pool}

// renderAll flattens a rendering into one text, file by file, as `labctl render` lays it out.
func renderAll(t *testing.T, s *Spec, lxc string) []byte {
	t.Helper()
	r, err := Render(s, fixedInputs, GuestInputs{LXCVersion: lxc, DiskUUID: ""})
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
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			s, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("presets", name+".txt"), renderAll(t, s, s.LXC.Version))
		})
	}
}

// TestGoldenDialects renders the bookworm lab's guest files in the dialect of each LXC
// version, and once with AppArmor generated.
func TestGoldenDialects(t *testing.T) {
	for _, v := range []string{"1.1.5", "2.0.11", "3.0.4", "4.0.6", "5.0.2", "6.0.4"} {
		for _, aa := range []string{"unconfined", "generated"} {
			t.Run(v+"-"+aa, func(t *testing.T) {
				s, err := Preset("bookworm")
				if err != nil {
					t.Fatal(err)
				}
				s.Container("box1").AppArmor = aa
				g, err := RenderGuest(s, GuestInputs{LXCVersion: v, DiskUUID: "0f2c6f6e-1111-4a3b-9c1d-2e7e0d1b5a77"})
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
				golden(t, filepath.Join("dialects", "lxc-"+v+"-"+aa+".txt"), []byte(b.String()))
			})
		}
	}
}
