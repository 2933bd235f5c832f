package matrix

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labctl/labctl/lab/golden"
)

const smallGrid = `cells:
  - {name: bookworm, preset: bookworm}
  - name: recipe
    preset: bullseye
    excluded: "a reason the matrix file gives"
    lab: {lxc: {version: 1.1.5, source: /nonexistent/lxc-1.1.5.tar.xz}}
grid:
  preset: forky
  axes:
    kernel: ["5.10", "7.3"]
    lxc: ["4.0.6", "7.0.0"]
  exclude:
    - {kernel: "7.3", lxc: "4.0.6", reason: "a reason of the matrix file"}
  include:
    - {preset: bookworm, kernel: "6.1", lxc: "5.0.2", cgroup: v1}
    - {preset: bookworm, kernel: "6.1", lxc: "7.0.0", cgroup: v1}
`

// TestGridProduct: the product in axis order, the exclude's reason, the include on another
// userland, the pair that cannot exist with the validation's reason, each cell's lab.
func TestGridProduct(t *testing.T) {
	f, err := Parse([]byte(smallGrid), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.Cells {
		line := c.Name
		if c.Excluded != "" {
			line += " excluded: " + c.Excluded
		} else {
			line += " " + c.Spec.BoxName() + " kernel " + c.Spec.Kernel + " lxc " + c.Spec.LXC.Suite + "/" + c.Spec.LXC.Version
		}
		got = append(got, line)
	}
	want := []string{
		"bookworm labctl/bookworm kernel ~> 6.1.0 lxc /5.0.2",
		"recipe excluded: a reason the matrix file gives",
		"k5-10-lxc4-0-6 labctl/forky-k-bullseye-lxc-bullseye kernel ~> 5.10.0 lxc bullseye/4.0.6",
		"k5-10-lxc7-0-0 labctl/forky-k-bullseye kernel ~> 5.10.0 lxc /7.0.0",
		"k7-3-lxc4-0-6 excluded: a reason of the matrix file",
		"k7-3-lxc7-0-0 labctl/forky-k-trixie-backports kernel ~> 7.3.0 lxc /7.0.0",
		"k6-1-lxc5-0-2-v1-bookworm labctl/bookworm-cgroup1 kernel ~> 6.1.0 lxc /5.0.2",
		`k6-1-lxc7-0-0-v1-bookworm excluded: cannot exist: box.cgroup: "v1" cannot carry LXC 7.0.0: LXC from 7.0 mounts only the unified hierarchy into a container ("Failed to mount cgroups - unsupported cgroup layout" on a v1 host): use v2, or an LXC before 7.0`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("grid cells (-want +got):\n%s", diff)
	}
	if n := NeedsOf(f.Cells[4], libvirtHost()); n.Runnable || !n.Excluded || n.status() != Excluded {
		t.Errorf("an excluded cell's needs: %+v", n)
	}
}

func TestBadGrids(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"no preset", "grid: {axes: {kernel: [\"6.1\"], lxc: [\"5.0.2\"]}}", "grid.preset: name the userland"},
		{"no axes", "grid: {preset: forky}", "grid.axes: list the versions to cross"},
		{"bad cgroup", "grid: {preset: forky, axes: {kernel: [\"6.1\"], lxc: [\"5.0.2\"], cgroup: [v3]}}", `grid.axes.cgroup[0]: "v3" is not a cgroup hierarchy`},
		{"exclude without reason", "grid: {preset: forky, axes: {kernel: [\"6.1\"], lxc: [\"5.0.2\"]}, exclude: [{kernel: \"6.1\"}]}", "grid.exclude[0] (kernel 6.1): reason: say why"},
		{"exclude of nothing", "grid: {preset: forky, axes: {kernel: [\"6.1\"], lxc: [\"5.0.2\"]}, exclude: [{kernel: \"6.2\", reason: x}]}", "grid.exclude[0] (kernel 6.2) covers no cell of the grid"},
		{"kernel nobody serves", "grid: {preset: forky, axes: {kernel: [\"4.19\"], lxc: [\"5.0.2\"]}}", "grid cell k4-19-lxc5-0-2: kernel 4.19: no suite of the host's mirror serves kernel 4.19: it serves 5.10, 6.1"},
		{"lxc nobody serves", "grid: {preset: forky, axes: {kernel: [\"6.1\"], lxc: [\"3.0.3\"]}}", "lxc 3.0.3: no suite of the host's mirror serves LXC 3.0.3: it serves 4.0.6, 5.0.2, 6.0.4, 7.0.0"},
		{"include half", "grid: {preset: forky, axes: {kernel: [\"6.1\"], lxc: [\"5.0.2\"]}, include: [{kernel: \"6.1\"}]}", "grid.include[0]: name both its kernel and its lxc"},
		{"name clash", "cells: [{name: k6-1-lxc5-0-2, preset: forky}]\ngrid: {preset: forky, axes: {kernel: [\"6.1\"], lxc: [\"5.0.2\"]}}", "grid cell k6-1-lxc5-0-2: a named cell has that name already"},
		{"unknown field", "grid: {preset: forky, axis: {}}", "field axis not found"},
	} {
		_, err := Parse([]byte(c.yaml), "m.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestGridReport runs the small grid with the fake suite (one cell failing its nested level)
// and compares the summary's grid, Markdown and HTML, with the golden files.
func TestGridReport(t *testing.T) {
	f, err := Parse([]byte(smallGrid), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	suite := &fakeSuite{fail: map[string]bool{"k7-3-lxc7-0-0": true}}
	var progress bytes.Buffer
	if _, err := Run(context.Background(), f, f.Cells, Options{Out: out, Jobs: 2, Runner: suite, Host: libvirtHost(), Progress: &progress, Machine: "test"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "cell k7-3-lxc4-0-6: excluded: a reason of the matrix file") {
		t.Errorf("progress does not say the excluded cell:\n%s", progress.String())
	}
	rep, err := WriteReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Headline(), "8 cells: 4 passed, 1 failed, 0 skipped, 3 excluded") {
		t.Errorf("headline: %s", rep.Headline())
	}
	golden.Check(t, "grid.md.golden", []byte(rep.gridMarkdown()))
	html, err := os.ReadFile(filepath.Join(out, "summary.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	from, to := strings.Index(page, "<h2>Kernel"), strings.Index(page, "<h2>Cells</h2>")
	if from < 0 || to < from {
		t.Fatalf("summary.html has no grid:\n%s", page)
	}
	golden.Check(t, "grid.html.golden", []byte(page[from:to]))
}
