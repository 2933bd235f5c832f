package provision

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/matrix"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

var updatePins = flag.Bool("update", false, "rewrite testdata/pins.txt")

// TestPinnedKeysAndSteps pins, for every preset and every cell of the default matrix, what a
// restructure must not change by accident: the box's cache key, the cache key of each local
// image (it hashes the files rendered for the container's inside), and the provisioner's step
// list for the lab's own LXC version. A deliberate change rewrites testdata/pins.txt with
// `go test ./provision -run Pinned -update`, and its diff shows what changed.
func TestPinnedKeysAndSteps(t *testing.T) {
	var b strings.Builder
	for _, name := range spec.PresetNames() {
		s, err := spec.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		pin(t, &b, "preset "+name, s)
	}
	m, err := matrix.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Cells {
		if c.Spec == nil {
			fmt.Fprintf(&b, "== cell %s\n\texcluded: %s\n", c.Name, c.Excluded)
			continue
		}
		pin(t, &b, "cell "+c.Name, c.Spec)
	}
	p := filepath.Join("testdata", "pins.txt")
	if *updatePins {
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run `go test ./provision -run Pinned -update` to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("cache keys or steps changed (-pinned +now):\n%s\nif that is intended: go test ./provision -run Pinned -update", diff)
	}
}

// pin writes what one lab's spec pins.
func pin(t *testing.T, b *strings.Builder, what string, s *spec.Spec) {
	t.Helper()
	fmt.Fprintf(b, "== %s\n", what)
	if s.Box.Release != "" {
		r, err := build.BoxRecipeFor(s)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(b, "box %s key %s\n", r.Name(), r.Key())
	}
	p := &Provisioner{Spec: s, VM: &remote.SSHVM{Conn: newFakeConn()}, Facts: Facts{LXCVersion: s.LXC.Version, Cgroup: "v2", Systemd: true, UID: 1000}}
	guest, err := render.Guest(s, render.GuestInputs{LXCVersion: s.LXC.Version, DiskUUID: "DATA-DISK-UUID"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Containers {
		if c.Image.Type != "local" || c.Parent != "" || s.Box.Release == "" { // a nested one takes its top container's
			continue
		}
		r, err := build.ImageRecipeFor(s, insideFiles(guest, c.Name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(b, "image %s key %s\n", c.Name, r.Key())
	}
	steps, err := p.Steps()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		fmt.Fprintf(b, "step %s\n", st.Name)
	}
}
