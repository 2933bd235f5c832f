package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// RunSteps runs steps in order, printing one line per step (ok / changed / failed, with its
// time) and stopping at the first failure. With plan set it only checks and lists what would
// change. It always ends with "N changed, M ok".
func RunSteps(ctx context.Context, steps []Step, out io.Writer, plan bool) (Summary, error) {
	var sum Summary
	for _, st := range steps {
		start := time.Now()
		done, change, err := checkAgain(ctx, st)
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
		// Said before the apply runs, so that a long step (an image upload, lxc-create) shows
		// what it is doing.
		fmt.Fprintf(out, "  %-9s %-28s %s\n", "applying", st.Name, change)
		var cut *remote.CutError
		if err := st.Apply(ctx); err != nil {
			if !errors.As(err, &cut) || ctx.Err() != nil {
				fmt.Fprintf(out, "  %-9s %-28s %s\n", failWord(ctx), st.Name, since(start))
				fmt.Fprintln(out, sum.String())
				return sum, &StepError{Step: st.Name, Err: err, Hint: st.Hint}
			}
			// The connection was cut while the apply ran, and the command has since ended on the
			// far side: what it did decides, so the check below says whether the step is done.
			change += "; the connection was cut during it, and the check after it decides"
		}
		done, _, err = checkAgain(ctx, st)
		switch {
		case err == nil && !done && cut != nil:
			err = fmt.Errorf("%w, and the step is not done: run labctl again", cut)
		case err == nil && !done:
			err = errors.New("applied, but the check still finds it not done")
		}
		if err != nil {
			fmt.Fprintf(out, "  %-9s %-28s %s\n", "failed", st.Name, since(start))
			fmt.Fprintln(out, sum.String())
			return sum, &StepError{Step: st.Name, Err: fmt.Errorf("verify: %w", err), Hint: st.Hint}
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

// checkAgain runs a step's check, once more when the connection was cut under it (a check
// only reads, so running it twice is harmless).
func checkAgain(ctx context.Context, st Step) (bool, string, error) {
	done, change, err := st.Check(ctx)
	var cut *remote.CutError
	if errors.As(err, &cut) && ctx.Err() == nil {
		done, change, err = st.Check(ctx)
	}
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
