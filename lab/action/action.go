// Package action runs a verb as an explicit, ordered list of actions (kind's create actions,
// packer's multistep). Each action is a named phase; one that made something a later failure
// should take away returns its Undo. The runner prints each phase as it starts, with where its
// log is, times it, and owns the rollback: when an action fails (an interrupt cancels the
// context, and the action in flight fails with it), the undos registered so far run in
// reverse, unless the runner keeps what was made.
package action

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Action is one phase of a verb.
type Action struct {
	// Name names the phase in progress lines and in the timings.
	Name string
	// Log is where the phase's detailed output goes ("" for none): printed with the phase.
	Log string
	// When, if set, decides at the phase's turn whether it runs at all (a skipped phase is
	// neither printed nor timed).
	When func() bool
	// Do runs the phase. It returns the Undo of what it made (nil: nothing to take away),
	// also when it fails after making something.
	Do func(ctx context.Context) (*Undo, error)
}

// Undo takes away what an action made, when a later action (or that one) fails.
type Undo struct {
	// What is what it takes away, for the user ("the VM this run created").
	What string
	// Kept is said instead when the runner keeps it (Runner.Keep).
	Kept string
	// Do takes it away, saying on out what it removed or what is left to do. It runs with a
	// context that an interrupt does not cancel.
	Do func(ctx context.Context, out io.Writer)
}

// Timing is how long one phase took.
type Timing struct {
	Name string
	Took time.Duration
}

// Runner runs a verb's actions.
type Runner struct {
	// Verb names the verb in its lines ("up").
	Verb string
	// Out receives a line per phase and what the rollback does.
	Out io.Writer
	// Keep keeps what the actions made when one fails; KeepFlag is the flag that asks for it
	// (named in the rollback's line, "" when the verb has none).
	Keep     bool
	KeepFlag string
	// Timings are the phases run so far, in order.
	Timings []Timing
}

// Run runs the actions in order and stops at the first failure, after the rollback.
func (r *Runner) Run(ctx context.Context, acts []Action) error {
	var undos []*Undo
	for i, a := range acts {
		if a.When != nil && !a.When() {
			continue
		}
		where := ""
		if a.Log != "" {
			where = " (log " + a.Log + ")"
		}
		fmt.Fprintf(r.Out, "%s [%d/%d] %s%s\n", r.Verb, i+1, len(acts), a.Name, where)
		start := time.Now()
		undo, err := a.Do(ctx)
		r.Timings = append(r.Timings, Timing{Name: a.Name, Took: time.Since(start)})
		if undo != nil {
			undos = append(undos, undo)
		}
		if err != nil {
			r.rollback(context.WithoutCancel(ctx), undos)
			return err
		}
	}
	return nil
}

// rollback runs the undos in reverse, or says what it keeps.
func (r *Runner) rollback(ctx context.Context, undos []*Undo) {
	for i := len(undos) - 1; i >= 0; i-- {
		u := undos[i]
		if r.Keep {
			fmt.Fprintln(r.Out, u.Kept)
			continue
		}
		keep := ""
		if r.KeepFlag != "" {
			keep = " (use " + r.KeepFlag + " to keep it)"
		}
		fmt.Fprintf(r.Out, "%s failed: removing %s%s\n", r.Verb, u.What, keep)
		u.Do(ctx, r.Out)
	}
}

// Took is how long the phase called name took (0 when it did not run).
func (r *Runner) Took(name string) time.Duration {
	for _, t := range r.Timings {
		if t.Name == name {
			return t.Took
		}
	}
	return 0
}
