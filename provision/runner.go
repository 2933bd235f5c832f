package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/labctl/labctl/provision/remote"
)

// Step is one idempotent provisioning step: Check says whether it is already done (and if
// not, what would change), Apply does it, and Check runs again after Apply to verify it.
type Step struct {
	Name  string
	Check func(ctx context.Context) (done bool, change string, err error)
	Apply func(ctx context.Context) error
	// Hint tells the user what to do when the step fails.
	Hint string
}

// StepError is a failed step, with the hint for the user.
type StepError struct {
	Step string
	Err  error
	Hint string
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %q failed: %v", e.Step, e.Err)
	if e.Hint != "" {
		msg += "\nhint: " + e.Hint
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// Summary counts what a run did.
type Summary struct {
	Changed, OK int
	// Changes names the steps that changed (or, in plan mode, would change).
	Changes []string
}

func (s Summary) String() string { return fmt.Sprintf("%d changed, %d ok", s.Changed, s.OK) }

// Deadlines of what labctl asks the guest: a check or the facts only read (seconds on a ready
// lab), an apply may install packages or make a container (minutes under TCG). A guest that
// holds a command open past them (hung, or hostile) fails it, said so, instead of holding
// labctl until Ctrl-C. Variables so that tests can shorten them.
var (
	CheckDeadline = 5 * time.Minute
	ApplyDeadline = 30 * time.Minute
)

// SilentError is a command that the guest held open past its deadline: labctl stopped it.
type SilentError struct {
	After time.Duration
}

func (e *SilentError) Error() string {
	return fmt.Sprintf("the guest gave no answer in %s (a command held open there: hung, or busy with something else), so labctl stopped it; see the log for the command, and run labctl again", e.After)
}

// within runs f with a deadline d: when f fails because the deadline passed (and not because
// ctx ended), its error is a SilentError. d <= 0 sets none.
func within(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	if d <= 0 {
		return f(ctx)
	}
	silent := &SilentError{After: d}
	dctx, cancel := context.WithTimeoutCause(ctx, d, silent)
	defer cancel()
	err := f(dctx)
	if err != nil && ctx.Err() == nil && context.Cause(dctx) == error(silent) {
		return silent
	}
	return err
}

// RunSteps runs steps in order, printing one line per step (ok / changed / failed, with its
// time) and stopping at the first failure. With plan set it only checks and lists what would
// change. It always ends with "N changed, M ok".
func RunSteps(ctx context.Context, steps []Step, out io.Writer, plan bool) (Summary, error) {
	return RunStepsAhead(ctx, steps, out, plan, 0)
}

// RunStepsAhead is RunSteps with the checks of up to ahead later steps running at once,
// while the steps so far were found done: on a lab that is already provisioned, every check
// is a read, and each costs a round trip and a process in the guest, so a run that finds
// nothing to do takes a fraction of the time. A check run ahead counts only when it found its
// step done and no step has applied yet: at the first step that is not done, or whose check
// failed, the checks ahead stop (those running are waited for) and that step and every later
// one are checked again, one at a time, as RunSteps does.
func RunStepsAhead(ctx context.Context, steps []Step, out io.Writer, plan bool, ahead int) (Summary, error) {
	var sum Summary
	pre := checkAhead(ctx, steps, ahead)
	defer pre.stop()
	for i, st := range steps {
		start := time.Now()
		done, change, err := pre.take(i)
		if !done || err != nil {
			pre.stop()
			done, change, err = checkAgain(ctx, st)
		}
		if err != nil {
			fmt.Fprintf(out, "  %-9s %-28s %s\n", failWord(ctx), st.Name, since(start))
			fmt.Fprintln(out, sum.String())
			return sum, &StepError{Step: st.Name, Err: fmt.Errorf("check: %w", err), Hint: st.Hint}
		}
		if done {
			sum.OK++
			fmt.Fprintf(out, "  %-9s %-28s %s\n", "ok", st.Name, since(start))
			continue
		}
		if plan {
			sum.Changed++
			sum.Changes = append(sum.Changes, st.Name)
			fmt.Fprintf(out, "  %-9s %-28s %s\n", "change", st.Name, change)
			continue
		}
		change, err = apply(ctx, st, out, change, start)
		if err != nil {
			fmt.Fprintln(out, sum.String())
			return sum, err
		}
		sum.Changed++
		sum.Changes = append(sum.Changes, st.Name)
		fmt.Fprintf(out, "  %-9s %-28s %s  (%s)\n", "changed", st.Name, since(start), change)
	}
	if plan {
		fmt.Fprintf(out, "plan: %s\n", sum.String())
	} else {
		fmt.Fprintln(out, sum.String())
	}
	return sum, nil
}

// apply applies a step that is not done and checks it again; it returns what changed, or the
// step's error (its line said).
func apply(ctx context.Context, st Step, out io.Writer, change string, start time.Time) (string, error) {
	// Said before the apply runs, so that a long step (an image upload, lxc-create) shows
	// what it is doing.
	fmt.Fprintf(out, "  %-9s %-28s %s\n", "applying", st.Name, change)
	var cut *remote.CutError
	if err := within(ctx, ApplyDeadline, st.Apply); err != nil {
		if !errors.As(err, &cut) || ctx.Err() != nil {
			fmt.Fprintf(out, "  %-9s %-28s %s\n", failWord(ctx), st.Name, since(start))
			return change, &StepError{Step: st.Name, Err: err, Hint: st.Hint}
		}
		// The connection was cut while the apply ran, and the command has since ended on the
		// far side: what it did decides, so the check below says whether the step is done.
		change += "; the connection was cut during it, and the check after it decides"
	}
	done, _, err := checkAgain(ctx, st)
	switch {
	case err == nil && !done && cut != nil:
		err = fmt.Errorf("%w, and the step is not done: run labctl again", cut)
	case err == nil && !done:
		err = errors.New("applied, but the check still finds it not done")
	}
	if err != nil {
		fmt.Fprintf(out, "  %-9s %-28s %s\n", "failed", st.Name, since(start))
		return change, &StepError{Step: st.Name, Err: fmt.Errorf("verify: %w", err), Hint: st.Hint}
	}
	return change, nil
}

// ahead runs steps' checks in step order, n at a time, until stopped.
type ahead struct {
	results []chan checked
	halt    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	stopped bool // set by stop; take and stop are called by the runner only
}

type checked struct {
	done   bool
	change string
	err    error
}

func checkAhead(ctx context.Context, steps []Step, n int) *ahead {
	a := &ahead{halt: make(chan struct{})}
	if n <= 0 {
		a.stop()
		return a
	}
	a.results = make([]chan checked, len(steps))
	for i := range steps {
		a.results[i] = make(chan checked, 1)
	}
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range steps {
			select {
			case next <- i:
			case <-a.halt:
				return
			}
		}
	}()
	for w := 0; w < n && w < len(steps); w++ {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for i := range next {
				var c checked
				c.done, c.change, c.err = checkAgain(ctx, steps[i])
				a.results[i] <- c
			}
		}()
	}
	return a
}

// take returns step i's check run ahead; not done when it was not run (or checks ahead
// have stopped).
func (a *ahead) take(i int) (bool, string, error) {
	if a.results == nil || a.stopped {
		return false, "", nil
	}
	select {
	case c := <-a.results[i]:
		return c.done, c.change, c.err
	case <-a.halt:
		return false, "", nil
	}
}

// stop dispatches no more checks and waits for those running: after it, nothing runs beside
// the caller's own commands.
func (a *ahead) stop() {
	a.stopped = true
	a.once.Do(func() { close(a.halt) })
	a.wg.Wait()
}

// checkAgain runs a step's check, once more when the connection was cut under it (a check
// only reads, so running it twice is harmless; its commands say so: remote.Reading).
// Both runs together have CheckDeadline.
func checkAgain(ctx context.Context, st Step) (done bool, change string, err error) {
	err = within(remote.Reading(ctx), CheckDeadline, func(ctx context.Context) error {
		var err error
		done, change, err = st.Check(ctx)
		var cut *remote.CutError
		if errors.As(err, &cut) && ctx.Err() == nil {
			done, change, err = st.Check(ctx)
		}
		return err
	})
	return done, change, err
}

// failWord is how a step's line ends when it did not finish: interrupted when the run was
// cancelled (Ctrl-C, SIGTERM), else failed.
func failWord(ctx context.Context) string {
	if ctx.Err() != nil {
		return "interrupted"
	}
	return "failed"
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
