package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	fmt.Fprintf(o.Progress, "bisect: %s axis, %d candidates after %s up to %s (the last one is %s, known bad): about %d step(s)\n",
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
