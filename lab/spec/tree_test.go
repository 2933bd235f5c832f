package spec

import (
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// treeSpec is the bookworm preset with its containers replaced.
func treeSpec(t *testing.T, containers string) string {
	t.Helper()
	base := presetYAML(t, "bookworm")
	i := strings.Index(base, "containers:")
	if i < 0 {
		t.Fatal("the bookworm preset has no containers:")
	}
	return base[:i] + "containers:\n" + containers
}

// TestImpossibleTreesAreRefused: every shape of containers that cannot be built is refused
// by validation, before anything is built or booted, naming the container, why, and what to
// write instead.
func TestImpossibleTreesAreRefused(t *testing.T) {
	for _, c := range []struct {
		name, containers string
		want             []string
	}{
		{"the third level (two containers of the VM, one nesting; a privileged one nested in it with nesting: true; a fourth inside that)", `
  - {name: a, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: b, unprivileged: true, backing: btrfs, image: {type: local}}
  - {name: c, parent: a, backing: dir, image: {type: busybox}, nesting: true}
  - {name: d, parent: c, backing: dir, image: {type: busybox}}
`, []string{`containers[2].nesting: true c is nested in a (it holds d), and containers below the first level cannot hold containers`, "put c's containers under a container of the VM, or set nesting: false"}},
		{"a busybox container holding one", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: busybox}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: busybox}}
`, []string{`containers[0].image.type: "busybox" box1 nests (it holds n1), but a busybox image carries no LXC`, "use image type local"}},
		{"a busybox container that nests", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: busybox}, nesting: true}
`, []string{`containers[0].image.type: "busybox" box1 nests, but a busybox image carries no LXC`}},
		{"a nested container that nests", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: busybox}, nesting: true}
`, []string{`containers[1].nesting: true n1 is nested in box1, and containers below the first level cannot hold containers`}},
		{"an unprivileged container nested in one", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: n1, parent: box1, unprivileged: true, backing: dir, image: {type: busybox}}
`, []string{`containers[1].unprivileged: true n1 is nested in box1, where it is created by box1's root`, "remove unprivileged"}},
		{"a container in one that does not nest", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: local}}
  - {name: n1, parent: box1, backing: dir, image: {type: busybox}}
`, []string{`containers[1].parent: "box1" does not allow nesting: set containers[0].nesting: true`}},
		{"a nested container on btrfs", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: n1, parent: box1, backing: btrfs, image: {type: busybox}}
`, []string{`containers[1].backing: "btrfs" is only supported for containers of the VM`}},
		{"a nested container of labctl's image", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: local}}
`, []string{`containers[1].image.type: "local" is only supported for containers of the VM`}},
		{"a privileged container of the VM", `
  - {name: box1, backing: btrfs, image: {type: local}, nesting: true}
`, []string{`containers[0].unprivileged: false must be true for a container of the VM`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			faulttest.Count(t, "input", "tree-"+strings.Fields(c.name)[1])
			_, err := Parse([]byte(treeSpec(t, c.containers)))
			if err == nil {
				t.Fatal("the tree was accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want %q in:\n%v", w, err)
				}
			}
		})
	}
}

// TestPossibleTreesAreAccepted: the shapes labctl builds validate: the presets', and a
// container of the VM that nests on a downloaded image (the recipe's: LXC from apt-get).
func TestPossibleTreesAreAccepted(t *testing.T) {
	for _, name := range PresetNames() {
		if _, err := Parse([]byte(presetYAML(t, name))); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, err := Parse([]byte(treeSpec(t, `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: download, dist: debian, release: bookworm, arch: amd64}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: busybox}}
`))); err != nil {
		t.Errorf("a downloaded image that nests: %v", err)
	}
}
