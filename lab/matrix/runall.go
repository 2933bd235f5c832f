package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/labctl/labctl/lab/host"
)

// RunAllOptions are `labctl matrix run`'s.
type RunAllOptions struct {
	// Out is the matrix's output directory (tmp/matrix).
	Out string
	// Jobs is how many cells run at once (0: what fits, Jobs).
	Jobs int
	// Labctl is the labctl binary whose `test` verb runs the suite; Dir is where the cells'
	// labs live (Dir/tmp/); Keep leaves each cell's lab up, KeepFailed only a failed cell's.
	Labctl, Dir      string
	Keep, KeepFailed bool
	Host             Host
	// Progress gets the run's lines.
	Progress io.Writer
}

// RunAll runs the cells as `labctl matrix run` does: the runnable ones Jobs at a time (checked
// against the host's memory), each with `labctl test --up`, the others recorded as skipped
// with their reason, and it writes run.json.
func RunAll(ctx context.Context, f *File, cs []Cell, o RunAllOptions) error {
	machine := host.Describe()
	var runnable []Cell
	mem := 0
	for _, c := range cs {
		if NeedsOf(c, o.Host).Runnable {
			runnable = append(runnable, c)
			mem = max(mem, c.Spec.Memory+512)
		}
	}
	s := Suite{Labctl: o.Labctl, Dir: o.Dir, Keep: o.Keep, KeepFailed: o.KeepFailed}
	if len(runnable) > 0 {
		var err error
		if o.Jobs, err = Jobs(o.Jobs, mem, len(runnable)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	lk, err := LockOut(o.Out, "matrix run")
	if err != nil {
		return err
	}
	defer lk.Unlock()
	fmt.Fprintf(o.Progress, "matrix: %d cells (%d run here, %d at a time), on %s\n", len(cs), len(runnable), max(o.Jobs, 1), machine)
	start := time.Now()
	_, runErr := Run(ctx, f, cs, Options{Out: o.Out, Jobs: o.Jobs, Runner: s, Host: o.Host, Progress: o.Progress, Machine: machine})
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	info := RunInfo{Started: start.UTC(), Seconds: time.Since(start).Round(time.Second).Seconds(), Jobs: max(o.Jobs, 1), Cells: names, Machine: machine}
	if err := WriteRunInfo(o.Out, info); err != nil {
		return err
	}
	return runErr
}

// Jobs checks a number of cells at once against the host's free memory (mem MiB per cell) and
// picks the default (jobs 0): what fits, at most one cell per 2 cores, at most the cells there
// are.
func Jobs(jobs, mem, cells int) (int, error) {
	free := host.MemAvailableMiB()
	fits := free / mem
	if fits < 1 {
		return 0, fmt.Errorf("no cell fits in this host's free memory (%d MiB available, a cell needs %d MiB): stop other VMs, or lower memory: in the cells' lab", free, mem)
	}
	if jobs > fits {
		return 0, fmt.Errorf("--jobs %d: only %d cells fit in this host's free memory (%d MiB available, %d MiB each): use --jobs %d or less", jobs, fits, free, mem, fits)
	}
	if jobs == 0 {
		jobs = min(fits, max(1, runtime.NumCPU()/2), cells)
	}
	return jobs, nil
}

// LockOut takes the matrix output directory for a verb that runs or changes its cells' labs
// and results (run, merge, clean, bisect), or says which one holds it: a second run there
// would wipe the first one's results, and clean would destroy the lab of a cell that runs.
func LockOut(out, what string) (*host.Lock, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	lk, err := host.TryLock(filepath.Join(out, "run.lock"), what)
	var busy *host.BusyError
	if errors.As(err, &busy) {
		return nil, fmt.Errorf("%s: %s (pid %d) works in %s: wait for it to end, or run from another directory", what, busy.What, busy.PID, out)
	}
	return lk, err
}
