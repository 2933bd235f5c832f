package spec

import (
	"fmt"
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
		{"the issue's shape (two containers of the VM, one nesting; a busybox one nested in it with nesting: true; a fourth inside that)", `
  - {name: a, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: b, unprivileged: true, backing: btrfs, image: {type: local}}
  - {name: c, parent: a, backing: dir, image: {type: busybox}, nesting: true}
  - {name: d, parent: c, backing: dir, image: {type: busybox}}
`, []string{`containers[2].image.type: "busybox" c nests (it holds d), but a busybox image carries no LXC`, "use image type local"}},
		{"a busybox container holding one", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: busybox}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: busybox}}
`, []string{`containers[0].image.type: "busybox" box1 nests (it holds n1), but a busybox image carries no LXC`, "use image type local"}},
		{"a busybox container that nests", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: busybox}, nesting: true}
`, []string{`containers[0].image.type: "busybox" box1 nests, but a busybox image carries no LXC`}},
		{"a nested container that nests on a downloaded image", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: download, dist: debian, release: bookworm, arch: amd64}, nesting: true}
`, []string{`containers[1].image.type: "download" n1 is nested in box1 and nests, but a download image gets LXC from apt-get inside it (the internet), and a nested container has no network`}},
		{"a nested local container under a downloaded one", `
  - {name: box1, unprivileged: true, backing: btrfs, image: {type: download, dist: debian, release: bookworm, arch: amd64}, nesting: true}
  - {name: n1, parent: box1, backing: dir, image: {type: local}}
`, []string{`containers[1].image.type: "local" needs box1's own image to be local`}},
		{"a tree deeper than the kernel nests PID namespaces", deepTree(33),
			[]string{`containers[32].parent: "c31" puts c32 33 levels below the VM: the kernel nests at most 32 PID namespaces`}},
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
	if _, err := Parse([]byte(treeSpec(t, `
  - {name: web, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: mid, parent: web, backing: dir, image: {type: local}, nesting: true}
  - {name: leaf, parent: mid, backing: dir, image: {type: busybox}}
`))); err != nil {
		t.Errorf("three levels, labctl's image handed down: %v", err)
	}
	if _, err := Parse([]byte(treeSpec(t, deepTree(32)))); err != nil {
		t.Errorf("32 levels: %v", err)
	}
}

// deepTree is a chain of n containers, each in the one before, all of labctl's image but the
// last (busybox).
func deepTree(n int) string {
	var b strings.Builder
	b.WriteString("  - {name: c0, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}\n")
	for i := 1; i < n; i++ {
		im, nest := "local", ", nesting: true"
		if i == n-1 {
			im, nest = "busybox", ""
		}
		fmt.Fprintf(&b, "  - {name: c%d, parent: c%d, backing: dir, image: {type: %s}%s}\n", i, i-1, im, nest)
	}
	return b.String()
}
