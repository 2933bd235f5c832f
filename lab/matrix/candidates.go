package matrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

// Candidates are the cells between a passing and a failing cell that differ on one axis, in
// order, the failing cell last: the LXC axis walks the commits of the git checkout both cells
// build (git rev-list --ancestry-path good..bad), the kernel axis the grid's kernels between
// theirs with everything else the same.
func Candidates(ctx context.Context, f *File, good, bad Cell) (axis string, probes []Probe, err error) {
	if good.Spec == nil || bad.Spec == nil {
		return "", nil, errors.New("both cells must have a lab (an excluded cell has none)")
	}
	g, b := *good.Spec, *bad.Spec
	switch {
	case g.LXC.Source != "" && g.LXC.Source == b.LXC.Source && g.LXC.Ref != b.LXC.Ref:
		if err := sameBut(g, b, "lxc"); err != nil {
			return "", nil, err
		}
		probes, err := commitProbes(ctx, bad, g.LXC.Source, g.LXC.Ref, b.LXC.Ref, g.LXC.Version)
		return "lxc", probes, err
	case good.Point != nil && bad.Point != nil && good.Point.Kernel != bad.Point.Kernel:
		if err := sameBut(g, b, "kernel"); err != nil {
			return "", nil, err
		}
		return "kernel", kernelProbes(f, good, bad), nil
	}
	return "", nil, fmt.Errorf("cells %s and %s do not differ on one axis labctl bisects: the LXC commit (both build lxc.source from the same git checkout, at two lxc.ref) or the kernel (two grid cells with the same LXC, cgroup and userland)", good.Name, bad.Name)
}

// sameBut refuses two labs that differ in more than the axis: their lab.yaml with the name,
// the axis' own fields and the box name (which follows them) left out must be the same.
func sameBut(a, b spec.Spec, axis string) error {
	norm := func(s spec.Spec) ([]byte, error) {
		s.Name, s.Box.Name = "", ""
		switch axis {
		case "lxc":
			s.LXC.Ref, s.LXC.Version, s.LXC.Expect = "", "", ""
		case "kernel":
			s.Box.Kernel, s.Kernel = "", ""
		}
		return s.Marshal()
	}
	ya, err := norm(a)
	if err != nil {
		return err
	}
	yb, err := norm(b)
	if err != nil {
		return err
	}
	if !bytes.Equal(ya, yb) {
		return fmt.Errorf("the two cells differ in more than the %s: bisect needs a good and a bad cell that differ only there (compare their lab.yaml: labctl matrix list, tmp/matrix/cells/<cell>/lab.yaml)", axis)
	}
	return nil
}

// commitProbes are the commits after good up to bad of the checkout src, each as the bad
// cell at that commit (named bisect-<commit>), its LXC version constraint loosened to the good
// one's version or newer (a commit between releases says the older version).
func commitProbes(ctx context.Context, bad Cell, src, good, badRef, goodVersion string) ([]Probe, error) {
	git := func(args ...string) (string, error) {
		out, err := host.Command(ctx, "git", append([]string{"-C", src}, args...)...).Output()
		if err != nil {
			return "", fmt.Errorf("git %s in %s: %v", strings.Join(args, " "), src, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	list, err := git("log", "--reverse", "--ancestry-path", "--format=%H %s", good+".."+badRef)
	if err != nil {
		return nil, err
	}
	if list == "" {
		return nil, fmt.Errorf("no commits from %s to %s in %s: the good cell's lxc.ref must be an ancestor of the bad cell's", good, badRef, src)
	}
	var probes []Probe
	for _, line := range strings.Split(list, "\n") {
		sha, subject, _ := strings.Cut(line, " ")
		s := *bad.Spec
		s.Name = "bisect-" + sha[:12]
		s.LXC.Ref = sha[:12]
		s.LXC.Version = goodVersion
		s.LXC.Expect = ">= " + goodVersion
		s.Box.Name = ""
		probes = append(probes, Probe{Cell: Cell{Name: s.Name, Preset: bad.Preset, Spec: &s}, What: sha[:12] + " " + subject})
	}
	// The bad cell itself closes the list (as it is: its name, its checks).
	probes[len(probes)-1] = Probe{Cell: bad, What: probes[len(probes)-1].What}
	return probes, nil
}

// kernelProbes are the grid cells on the kernels after the good cell's up to the bad one's,
// with the same LXC, cgroup and userland.
func kernelProbes(f *File, good, bad Cell) []Probe {
	var kernels []string
	if f.Grid != nil {
		kernels = f.Grid.Axes.Kernel
	}
	from, to := -1, -1
	for i, k := range kernels {
		if k == good.Point.Kernel {
			from = i
		}
		if k == bad.Point.Kernel {
			to = i
		}
	}
	var probes []Probe
	if from >= 0 && to > from {
		for _, k := range kernels[from+1 : to] {
			p := *bad.Point
			p.Kernel = k
			for _, c := range f.Cells {
				if c.Point != nil && *c.Point == p && c.Spec != nil && c.Excluded == "" {
					probes = append(probes, Probe{Cell: c, What: "kernel " + k})
				}
			}
		}
	}
	return append(probes, Probe{Cell: bad, What: "kernel " + bad.Point.Kernel})
}
