package matrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/lab/host"
)

// Runner proves one cell whose lab.yaml is in dir: brings its lab up, runs the e2e suite
// against it and destroys it (unless kept). It writes the suite's Ginkgo report.json and
// junit.xml into dir and its output to log; an error means the suite did not pass or could
// not run. The real one is Suite; tests stand in for it.
type Runner interface {
	Run(ctx context.Context, c Cell, dir string, log io.Writer) error
}

// Suite runs the e2e suite with `labctl test --up` on the cell's lab.yaml, in the directory
// whose tmp/ holds the labs.
type Suite struct {
	// Labctl is the labctl binary whose `test` verb runs the suite (labctl itself, or another
	// build given with --suite); Dir is where it runs (labs live in Dir/tmp/).
	Labctl, Dir string
	// Keep leaves each cell's lab up after the suite; KeepFailed only a failed cell's (labctl
	// test --keep-failed: kept when labctl up or a spec failed).
	Keep, KeepFailed bool
	// LabelFilter runs only the specs it matches (Ginkgo's syntax; "" all).
	LabelFilter string
}

// Run runs the suite for one cell.
func (s Suite) Run(ctx context.Context, c Cell, dir string, log io.Writer) error {
	dir, err := filepath.Abs(dir) // the suite runs in s.Dir
	if err != nil {
		return err
	}
	lab := filepath.Join(dir, "lab.yaml")
	args := []string{"test", "--up", "-v", "--timeout", "80m",
		"--json", filepath.Join(dir, "report.json"), "--junit", filepath.Join(dir, "junit.xml"), "-f", lab}
	if s.LabelFilter != "" {
		args = append(args, "--label-filter", s.LabelFilter)
	}
	switch {
	case s.Keep:
		args = append(args, "--keep")
	case s.KeepFailed:
		args = append(args, "--keep-failed")
	}
	cmd := host.Command(ctx, s.Labctl, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.Dir, log, log
	start := time.Now()
	err = cmd.Run()
	if err != nil {
		if kerr := keepEvidence(s.Dir, c.Spec.Name, dir, start); kerr != nil {
			fmt.Fprintf(log, "matrix: keeping the lab's logs as evidence: %v\n", kerr)
		}
	}
	if err != nil && !s.Keep && !s.KeepFailed {
		// The suite destroys its lab itself; one stopped (an interrupt: SIGKILL after the
		// grace) or dead before its cleanup must not leave the cell's VM behind. destroy
		// removes only what labctl made for this lab, and nothing when there is nothing.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		fmt.Fprintf(log, "matrix: the suite ended with %v: labctl destroy -f %s\n", err, lab)
		d := host.Command(dctx, s.Labctl, "destroy", "-f", lab)
		d.Dir, d.Stdout, d.Stderr = s.Dir, log, log
		if derr := d.Run(); derr != nil {
			return fmt.Errorf("the suite: %w; and labctl destroy: %v (the lab %s may be left: labctl destroy -f %s)", err, derr, c.Name, lab)
		}
	}
	if err != nil {
		return fmt.Errorf("the suite: %w", err)
	}
	return nil
}

// Options of a run.
type Options struct {
	// Out is the matrix's output directory (tmp/matrix): cells/<cell>/ and the reports.
	Out string
	// Jobs is how many cells run at once (at least 1).
	Jobs   int
	Runner Runner
	Host   Host
	// Progress gets a line per cell as it starts, every Every while it runs, and as it ends.
	Progress io.Writer
	Every    time.Duration
	// Machine names this host in the results.
	Machine string
}

// Run replaces Out's results with those of the cells (the runnable ones run; the others are
// recorded as skipped with their reason), Jobs at a time, each into Out/cells/<cell>/, and
// returns their results in order.
func Run(ctx context.Context, f *File, cells []Cell, o Options) ([]Result, error) {
	if o.Jobs < 1 {
		o.Jobs = 1
	}
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	// A run's output is that run's: results of an earlier run do not mix into its report
	// (gather runs made elsewhere with Merge).
	for _, old := range []string{"cells", "cells.merge", "run.json", "summary.md", "summary.html", "junit.xml"} {
		if err := os.RemoveAll(filepath.Join(o.Out, old)); err != nil {
			return nil, err
		}
	}
	results, todo, err := prepare(f, cells, o)
	if err != nil {
		return nil, err
	}
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, o.Jobs)
		errMu sync.Mutex
		errs  []error
	)
	for _, i := range todo {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-slots; wg.Done() }()
			if err := runCell(ctx, cells[i], &results[i], o); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return results, errors.New("the matrix stopped before every cell ran: the cells that ran have their results")
	}
	return results, errors.Join(errs...)
}

// prepare makes each cell's directory and result; a cell this host cannot run is recorded as
// skipped with its reason. todo are the cells to run.
func prepare(f *File, cells []Cell, o Options) (results []Result, todo []int, err error) {
	results = make([]Result, len(cells))
	for i, c := range cells {
		dir := filepath.Join(o.Out, "cells", c.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		results[i] = newResult(c, f.Index(c.Name), o.Machine)
		if n := NeedsOf(c, o.Host); !n.Runnable {
			results[i].Status, results[i].Reason = n.status(), n.Reason
			results[i].Started = time.Now()
			fmt.Fprintf(o.Progress, "cell %s: %s: %s\n", c.Name, n.status(), n.Reason)
			if err := results[i].write(dir); err != nil {
				return nil, nil, err
			}
			continue
		}
		todo = append(todo, i)
	}
	return results, todo, nil
}

// runCell runs one cell and writes its result; the error is only for what stops the matrix
// (a result that cannot be written), not for a cell that failed.
func runCell(ctx context.Context, c Cell, r *Result, o Options) error {
	dir := filepath.Join(o.Out, "cells", c.Name)
	data, err := c.Spec.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), data, 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "run.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	tail := &lastLine{}
	r.Started = time.Now()
	fmt.Fprintf(o.Progress, "cell %s: running (lab %s; log %s)\n", c.Name, c.Spec.Name, logPath)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(o.Every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(o.Progress, "cell %s: %s, %s\n", c.Name, time.Since(r.Started).Round(time.Second), tail.String())
			}
		}
	}()
	runErr := o.Runner.Run(ctx, c, dir, io.MultiWriter(logf, tail))
	close(done)
	r.Seconds = time.Since(r.Started).Round(time.Second).Seconds()
	if err := r.readSuite(filepath.Join(dir, "report.json")); err != nil {
		r.Status, r.Reason = Failed, err.Error()
	}
	if runErr != nil && r.Status != Failed {
		r.Status, r.Reason = Failed, runErr.Error()
	}
	if runErr != nil && r.Status == Failed && !strings.Contains(r.Reason, runErr.Error()) {
		r.Reason += " (" + runErr.Error() + ")"
	}
	if r.Status == Failed {
		r.explain(o.Out)
		for _, w := range r.Why {
			fmt.Fprintf(o.Progress, "cell %s: why: %s (%s)\n", c.Name, w.Says, w.Found)
		}
	}
	fmt.Fprintf(o.Progress, "cell %s: %s in %s (%d passed, %d failed, %d skipped; kernel %s, LXC %s; log %s)\n",
		c.Name, r.Status, r.Duration(), r.Total.Passed, r.Total.Failed, r.Total.Skipped, orDash(r.Kernel), orDash(r.LXC), logPath)
	return r.write(dir)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lastLine keeps the last non-empty line written to it, for progress lines.
type lastLine struct {
	mu      sync.Mutex
	partial []byte
	last    string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(stripANSI(string(l.partial[:i]))); line != "" {
			l.last = line
		}
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > 4096 {
		l.partial = l.partial[len(l.partial)-4096:]
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.last
	if s == "" {
		return "no output yet"
	}
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return "last: " + s
}

// stripANSI drops terminal colour sequences (Ginkgo's) from a line.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < '@' || s[j] > '~') {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
