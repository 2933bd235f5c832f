package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

// Verdict is what one bisect step found.
type Verdict string

// The verdicts: the cell passed, it failed, or it cannot say (an LXC commit that does not
// build is skipped, as `git bisect run` skips on exit 125).
const (
	Good Verdict = "good"
	Bad  Verdict = "bad"
	Skip Verdict = "skip"
)

// Probe is one candidate of a bisection: a cell between the good and the bad one.
type Probe struct {
	Cell Cell
	// What names the candidate: a commit and its subject, or a kernel version.
	What string
}

// Step is one probe that ran.
type Step struct {
	Index   int     `json:"index"`
	What    string  `json:"what"`
	Cell    string  `json:"cell"`
	Verdict Verdict `json:"verdict"`
	// Why says what failed (the failed specs, what the logs show), or why it was skipped.
	Why     string  `json:"why,omitempty"`
	Seconds float64 `json:"seconds"`
	Dir     string  `json:"dir"`
}

// Bisection is a bisection's outcome: the first bad candidate (or the range it is in, when
// skipped candidates hide it), and every step.
type Bisection struct {
	Axis       string   `json:"axis"`
	Good       string   `json:"good"`
	Bad        string   `json:"bad"`
	Candidates []string `json:"candidates"`
	// FirstBad is the first bad candidate's What; Range the candidates it may be among when
	// skips leave more than one.
	FirstBad string   `json:"first_bad,omitempty"`
	Range    []string `json:"range,omitempty"`
	// Why is what the first bad candidate's step failed with.
	Why     string  `json:"why,omitempty"`
	Steps   []Step  `json:"steps"`
	Seconds float64 `json:"seconds"`
}

// Bisect finds the first bad of n candidates, ordered oldest first: the last is known bad
// (the failing cell) and the one before the first known good. test probes candidate i. It
// halves the range each step; a Skip sends it to the nearest untried candidate of the range,
// and when only skipped candidates are left between the last good and the first bad, the
// answer is that range (first, hi] rather than one. It returns the index of the first bad
// candidate and the skipped ones left in front of it (none when the answer is exact).
func Bisect(ctx context.Context, n int, test func(ctx context.Context, i int) (Verdict, error)) (first int, ambiguous []int, err error) {
	lo, hi := -1, n-1 // lo: last known good (-1: the good cell); hi: first known bad
	skipped := map[int]bool{}
	for hi-lo > 1 {
		if ctx.Err() != nil {
			return hi, nil, ctx.Err()
		}
		mid := -1
		// The untried candidate nearest the middle of (lo, hi).
		center := (lo + hi) / 2
		for d := 0; d < hi-lo && mid < 0; d++ {
			for _, i := range []int{center - d, center + d} {
				if i > lo && i < hi && !skipped[i] {
					mid = i
					break
				}
			}
		}
		if mid < 0 { // only skipped candidates are left in (lo, hi)
			for i := lo + 1; i < hi; i++ {
				ambiguous = append(ambiguous, i)
			}
			return hi, ambiguous, nil
		}
		v, err := test(ctx, mid)
		if err != nil {
			return hi, nil, err
		}
		switch v {
		case Good:
			lo = mid
		case Bad:
			hi = mid
		default:
			skipped[mid] = true
		}
	}
	return hi, nil, nil
}

// BisectOptions are `labctl matrix bisect`'s.
type BisectOptions struct {
	// Out is the matrix's output directory: steps go to Out/bisect/<step>/, the outcome to
	// Out/bisect/bisect.json.
	Out string
	// Runner runs each step's cell (Suite: labctl test --up; its LabelFilter narrows the specs).
	Runner Runner
	// Build builds a step's LXC before its cell runs (nil: the cell's up builds it); an error
	// makes the step a Skip (the commit does not build).
	Build    func(ctx context.Context, s *spec.Spec, log io.Writer) error
	Progress io.Writer
}

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

// RunBisect bisects between a good and a bad cell: each step runs a candidate's cell (its LXC
// built first, a build failure skipping it) and reads its result. It prints each step and the
// outcome, and writes Out/bisect/bisect.json.
func RunBisect(ctx context.Context, f *File, good, bad Cell, o BisectOptions) (*Bisection, error) {
	axis, probes, err := Candidates(ctx, f, good, bad)
	if err != nil {
		return nil, err
	}
	lk, err := LockOut(o.Out, "matrix bisect")
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	dir := filepath.Join(o.Out, "bisect")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bi := &Bisection{Axis: axis, Good: good.Name, Bad: bad.Name}
	for _, p := range probes {
		bi.Candidates = append(bi.Candidates, p.What)
	}
	fmt.Fprintf(o.Progress, "bisect: %s axis, %d candidates after %s up to %s (the last one is %s, known bad): about %d steps\n",
		axis, len(probes), good.Name, bad.Name, bad.Name, steps(len(probes)))
	start := time.Now()
	why := map[int]string{}
	first, amb, err := Bisect(ctx, len(probes), func(ctx context.Context, i int) (Verdict, error) {
		p := probes[i]
		st := Step{Index: len(bi.Steps) + 1, What: p.What, Cell: p.Cell.Name, Dir: filepath.Join(dir, fmt.Sprintf("%02d-%s", len(bi.Steps)+1, p.Cell.Name))}
		fmt.Fprintf(o.Progress, "bisect step %d: %s (cell %s; log %s)\n", st.Index, p.What, p.Cell.Name, filepath.Join(st.Dir, "run.log"))
		t0 := time.Now()
		st.Verdict, st.Why = probe(ctx, p, st.Dir, o)
		st.Seconds = time.Since(t0).Round(time.Second).Seconds()
		why[i] = st.Why
		bi.Steps = append(bi.Steps, st)
		fmt.Fprintf(o.Progress, "bisect step %d: %s in %s%s\n", st.Index, st.Verdict, time.Duration(st.Seconds)*time.Second, prefixed(": ", st.Why))
		return st.Verdict, ctx.Err()
	})
	bi.Seconds = time.Since(start).Round(time.Second).Seconds()
	if err == nil {
		if len(amb) > 0 {
			for _, i := range append(amb, first) {
				bi.Range = append(bi.Range, probes[i].What)
			}
			fmt.Fprintf(o.Progress, "bisect: the first bad one is among %d candidates (the others did not build):\n  %s\n", len(bi.Range), strings.Join(bi.Range, "\n  "))
		} else {
			bi.FirstBad, bi.Why = probes[first].What, why[first]
			if bi.Why == "" {
				bi.Why = "the failing cell " + bad.Name + " (not run again)"
			}
			fmt.Fprintf(o.Progress, "bisect: first bad: %s\n  %s\n", bi.FirstBad, bi.Why)
		}
		fmt.Fprintf(o.Progress, "bisect: %d steps in %s (%s)\n", len(bi.Steps), time.Duration(bi.Seconds)*time.Second, filepath.Join(dir, "bisect.json"))
	}
	data, jerr := json.MarshalIndent(bi, "", "  ")
	if jerr == nil {
		jerr = os.WriteFile(filepath.Join(dir, "bisect.json"), append(data, '\n'), 0o644)
	}
	return bi, errors.Join(err, jerr)
}

// probe runs one candidate: its LXC build (a failure skips it), then its cell.
func probe(ctx context.Context, p Probe, dir string, o BisectOptions) (Verdict, string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Skip, err.Error()
	}
	logf, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		return Skip, err.Error()
	}
	defer logf.Close()
	if o.Build != nil {
		if err := o.Build(ctx, p.Cell.Spec, logf); err != nil {
			return Skip, "does not build: " + firstLine(err.Error())
		}
	}
	data, err := p.Cell.Spec.Marshal()
	if err != nil {
		return Skip, err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), data, 0o644); err != nil {
		return Skip, err.Error()
	}
	runErr := o.Runner.Run(ctx, p.Cell, dir, logf)
	r := Result{Cell: p.Cell.Name}
	if err := r.readSuite(filepath.Join(dir, "report.json")); err != nil {
		r.Status, r.Reason = Failed, err.Error()
	}
	if runErr != nil && r.Status != Failed {
		r.Status, r.Reason = Failed, runErr.Error()
	}
	if r.Status == Passed {
		return Good, ""
	}
	// The step's why: the failed specs, the failed step of up, what the logs show.
	why := "failed: " + r.Reason
	if step := failedStep(dir); step != "" {
		why = fmt.Sprintf("labctl up failed at its step %q; %s", step, why)
	}
	if ws := explain(dir); len(ws) > 0 {
		why += "; " + ws[0].Says + " (" + ws[0].Found + ")"
	}
	return Bad, why
}

func steps(n int) int {
	s := 0
	for n > 1 {
		n = (n + 1) / 2
		s++
	}
	return s
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
