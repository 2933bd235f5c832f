package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/spec"
)

// TestFaultRenderWritesNoSymlink: a symlink planted in the output directory before `labctl
// render` writes: a symlinked directory (guest -> elsewhere) is refused and nothing is written
// where it points; a symlinked file (Vagrantfile -> a file elsewhere) is replaced by the
// rendering, the file it pointed to unchanged.
func TestFaultRenderWritesNoSymlink(t *testing.T) {
	faulttest.Count(t, "fault", "symlink-in-render-output")
	s, err := spec.Preset(spec.DefaultPreset)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Render(s, fixedInputs, GuestInputs{LXCVersion: s.LXC.Version})
	if err != nil {
		t.Fatal(err)
	}
	dir, elsewhere := t.TempDir(), t.TempDir()
	victim := filepath.Join(elsewhere, "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o644)
	if err := os.Symlink(victim, filepath.Join(dir, "Vagrantfile")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "guest")); err != nil {
		t.Fatal(err)
	}
	_, err = r.WriteTo(dir)
	if err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Fatalf("a symlinked guest directory was written through: %v", err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Fatalf("the file the planted Vagrantfile symlink named was changed: %q", data)
	}
	if st, err := os.Lstat(filepath.Join(dir, "Vagrantfile")); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("the planted Vagrantfile symlink was not replaced by the rendering: %v", err)
	}
	left, _ := os.ReadDir(elsewhere)
	if len(left) != 1 {
		t.Fatalf("files written where the planted guest symlink points: %v", left)
	}
	os.Remove(filepath.Join(dir, "guest"))
	wrote, err := r.WriteTo(dir)
	if err != nil || len(wrote) < 5 {
		t.Fatalf("without the symlink: %v, %d files", err, len(wrote))
	}
}
