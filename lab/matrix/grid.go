package matrix

import (
	"errors"
	"fmt"
	"strings"

	"github.com/labctl/labctl/lab/release"
)

// Grid is a product of axes on one userland, as a CI job matrix is: every kernel × every LXC
// × every cgroup hierarchy, the exclude entries taken out (each with its reason, reported), the
// include entries added (another userland may carry them: cgroup v1 needs an older systemd).
type Grid struct {
	// Preset is the userland: the preset whose lab each cell starts from.
	Preset  string  `yaml:"preset"`
	Axes    Axes    `yaml:"axes"`
	Include []Point `yaml:"include,omitempty"`
	Exclude []Point `yaml:"exclude,omitempty"`
}

// Axes are the values each axis takes: kernels and LXC versions by the version a suite of the
// host's mirror serves (release.KernelSuite, release.LXCSuite), cgroup v2 and/or v1 (default v2).
type Axes struct {
	Kernel []string `yaml:"kernel"`
	LXC    []string `yaml:"lxc"`
	Cgroup []string `yaml:"cgroup,omitempty"`
}

// Point is one place in the grid. In exclude, an empty field matches any value and Reason is
// required; in include, Kernel and LXC are required and Preset may name another userland.
type Point struct {
	Kernel string `yaml:"kernel,omitempty"`
	LXC    string `yaml:"lxc,omitempty"`
	Cgroup string `yaml:"cgroup,omitempty"`
	Preset string `yaml:"preset,omitempty"`
	Reason string `yaml:"reason,omitempty"`
}

// Name is the cell's name: k<kernel>-lxc<lxc>, -v1 on cgroup v1, -<preset> on another userland
// than the grid's (dots become dashes: a cell names a lab).
func (p Point) Name(gridPreset string) string {
	n := "k" + p.Kernel + "-lxc" + p.LXC
	if p.Cgroup == "v1" {
		n += "-v1"
	}
	if p.Preset != "" && p.Preset != gridPreset {
		n += "-" + p.Preset
	}
	return strings.ReplaceAll(n, ".", "-")
}

// matches says whether exclude entry e covers p.
func (e Point) matches(p Point) bool {
	return (e.Kernel == "" || e.Kernel == p.Kernel) && (e.LXC == "" || e.LXC == p.LXC) &&
		(e.Cgroup == "" || e.Cgroup == p.Cgroup) && (e.Preset == "" || e.Preset == p.Preset)
}

// lab is the point's lab.yaml overrides on its preset: the kernel's suite (none when it is the
// release's own), LXC's suite and version, the constraints the suite checks, the hierarchy.
func (p Point) lab() (map[string]any, error) {
	ks, err := release.KernelSuite(p.Kernel)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", p.Kernel, err)
	}
	ls, err := release.LXCSuite(p.LXC)
	if err != nil {
		return nil, fmt.Errorf("lxc %s: %w", p.LXC, err)
	}
	box := map[string]any{"cgroup": p.Cgroup}
	if ks.Name != p.Preset {
		box["kernel"] = ks.Name
	}
	lxc := map[string]any{"version": p.LXC, "expect": "~> " + minorOf(p.LXC) + ".0"}
	if ls.Name != p.Preset {
		lxc["suite"] = ls.Name
	}
	return map[string]any{"box": box, "lxc": lxc, "kernel": "~> " + p.Kernel + ".0"}, nil
}

// minorOf is major.minor of a version.
func minorOf(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// cells expands the grid: the product in axis order (kernel, then LXC, then cgroup), then the
// includes. A cell an exclude covers carries its reason; one whose lab does not validate
// carries the validation's reason (the pair cannot exist); both are listed, never run.
func (g *Grid) cells() ([]Cell, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	cgroups := g.Axes.Cgroup
	if len(cgroups) == 0 {
		cgroups = []string{"v2"}
	}
	var points []Point
	for _, k := range g.Axes.Kernel {
		for _, l := range g.Axes.LXC {
			for _, cg := range cgroups {
				points = append(points, Point{Kernel: k, LXC: l, Cgroup: cg, Preset: g.Preset})
			}
		}
	}
	used := make([]bool, len(g.Exclude))
	for i := range points {
		for j, e := range g.Exclude {
			if e.matches(points[i]) {
				used[j] = true
				if points[i].Reason == "" {
					points[i].Reason = e.Reason
				}
			}
		}
	}
	for j, e := range g.Exclude {
		if !used[j] {
			return nil, fmt.Errorf("grid.exclude[%d] (%s) covers no cell of the grid: check its values against grid.axes", j, e.describe())
		}
	}
	for _, in := range g.Include {
		if in.Cgroup == "" {
			in.Cgroup = "v2"
		}
		if in.Preset == "" {
			in.Preset = g.Preset
		}
		points = append(points, in)
	}
	var out []Cell
	for _, p := range points {
		c, err := g.cell(p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// cell is one point as a cell.
func (g *Grid) cell(p Point) (Cell, error) {
	over, err := p.lab()
	if err != nil {
		return Cell{}, fmt.Errorf("grid cell %s: %w", p.Name(g.Preset), err)
	}
	pt := p
	c := Cell{Name: p.Name(g.Preset), Preset: p.Preset, Lab: over, Point: &pt}
	if p.Reason != "" {
		c.Excluded = p.Reason
		return c, nil
	}
	s, err := c.resolve()
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the lab's own errors, not the preset-and-overrides wrapping
		}
		c.Excluded = "cannot exist: " + oneLine(err)
		return c, nil
	}
	c.Spec = s
	return c, nil
}

// check refuses a grid that says nothing, or says it wrongly: the field and what to write.
func (g *Grid) check() error {
	var errs []error
	if g.Preset == "" {
		errs = append(errs, errors.New("grid.preset: name the userland the grid runs on (a preset labctl builds a box for: `labctl presets`)"))
	}
	if len(g.Axes.Kernel) == 0 || len(g.Axes.LXC) == 0 {
		errs = append(errs, errors.New("grid.axes: list the versions to cross in it, as kernel: [\"6.1\"] and lxc: [\"5.0.2\"]"))
	}
	for i, cg := range g.Axes.Cgroup {
		if cg != "v1" && cg != "v2" {
			errs = append(errs, fmt.Errorf("grid.axes.cgroup[%d]: %q is not a cgroup hierarchy: use v2 or v1", i, cg))
		}
	}
	for i, e := range g.Exclude {
		if e.Reason == "" {
			errs = append(errs, fmt.Errorf("grid.exclude[%d] (%s): reason: say why those cells cannot exist (the reports show it)", i, e.describe()))
		}
	}
	for i, in := range g.Include {
		if in.Kernel == "" || in.LXC == "" {
			errs = append(errs, fmt.Errorf("grid.include[%d]: name both its kernel and its lxc", i))
		}
	}
	return errors.Join(errs...)
}

func (e Point) describe() string {
	var parts []string
	for _, kv := range [][2]string{{"kernel", e.Kernel}, {"lxc", e.LXC}, {"cgroup", e.Cgroup}, {"preset", e.Preset}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if len(parts) == 0 {
		return "every cell"
	}
	return strings.Join(parts, ", ")
}

// oneLine joins a (multi-line, joined) error into one line for a report.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// Axes is where cell c sits on the matrix's axes: its userland, kernel and LXC versions and
// cgroup hierarchy; all "" for a cell whose box labctl does not build (the legacy ones).
func (c Cell) Axes() (userland, kernel, lxc, cgroup string) {
	s := c.Spec
	if p := c.Point; p != nil && s == nil {
		return p.Preset, p.Kernel, p.LXC, p.Cgroup
	}
	if s == nil || s.Box.Release == "" {
		return "", "", "", ""
	}
	rel, _ := release.Get(s.Box.Release)
	kernel, _ = rel.KernelOf(s.Box.Kernel)
	cgroup = s.Box.Cgroup
	if cgroup == "" {
		cgroup = "v2"
	}
	return s.Box.Release, kernel, s.LXC.Version, cgroup
}
