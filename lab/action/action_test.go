package action

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// trace records what the actions and their undos did, in order.
type trace struct{ did []string }

func (tr *trace) act(name string, fail error, undo bool) Action {
	return Action{Name: name, Log: "tmp/lab/logs/" + name + ".log", Do: func(ctx context.Context) (*Undo, error) {
		if err := ctx.Err(); err != nil {
			tr.did = append(tr.did, name+" cancelled")
			return nil, err
		}
		tr.did = append(tr.did, name)
		if !undo {
			return nil, fail
		}
		return &Undo{What: "what " + name + " made", Kept: "kept " + name, Do: func(ctx context.Context, out io.Writer) {
			if ctx.Err() != nil {
				tr.did = append(tr.did, "undo "+name+" with a cancelled context")
				return
			}
			tr.did = append(tr.did, "undo "+name)
		}}, fail
	}}
}

// TestRunnerRunsInOrderAndRollsBackInReverse: the actions run in order, each announced with
// its log; a skipped one is neither run, announced nor timed; a failure stops the run and
// undoes what the actions so far made (the failing one's too), last first, once.
func TestRunnerRunsInOrderAndRollsBackInReverse(t *testing.T) {
	tr := &trace{}
	var out strings.Builder
	r := &Runner{Verb: "up", Out: &out, KeepFlag: "--keep-on-failure"}
	boom := errors.New("boom")
	skip := tr.act("skipped", nil, true)
	skip.When = func() bool { return false }
	err := r.Run(context.Background(), []Action{
		tr.act("host", nil, false), tr.act("vm", nil, true), skip, tr.act("disk", boom, true), tr.act("never", nil, true),
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want the failing action's error, got %v", err)
	}
	want := "host|vm|disk|undo disk|undo vm"
	if got := strings.Join(tr.did, "|"); got != want {
		t.Fatalf("ran %q, want %q", got, want)
	}
	for _, line := range []string{"up [1/5] host (log tmp/lab/logs/host.log)", "up [4/5] disk", "up failed: removing what disk made (use --keep-on-failure to keep it)", "up failed: removing what vm made"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "skipped") || strings.Contains(out.String(), "never") {
		t.Errorf("a skipped or unreached action was announced:\n%s", out.String())
	}
	if len(r.Timings) != 3 || r.Timings[2].Name != "disk" || r.Took("skipped") != 0 {
		t.Errorf("timings %+v: want host, vm, disk", r.Timings)
	}
}

// TestRunnerKeepsWhatWasMade: with Keep, a failure undoes nothing and says what it keeps.
func TestRunnerKeepsWhatWasMade(t *testing.T) {
	tr := &trace{}
	var out strings.Builder
	r := &Runner{Verb: "up", Out: &out, Keep: true}
	err := r.Run(context.Background(), []Action{tr.act("vm", nil, true), tr.act("provision", errors.New("step failed"), false)})
	if err == nil || strings.Join(tr.did, "|") != "vm|provision" || !strings.Contains(out.String(), "kept vm") {
		t.Fatalf("err %v, ran %v, output:\n%s", err, tr.did, out.String())
	}
}

// TestRunnerUndoesAfterAnInterrupt: an interrupt (the context cancelled while an action runs)
// fails that action; the undos still run, with a context the interrupt does not cancel.
func TestRunnerUndoesAfterAnInterrupt(t *testing.T) {
	tr := &trace{}
	ctx, cancel := context.WithCancel(context.Background())
	interrupted := Action{Name: "provision", Do: func(ctx context.Context) (*Undo, error) {
		cancel()
		return nil, ctx.Err()
	}}
	r := &Runner{Verb: "up", Out: io.Discard}
	err := r.Run(ctx, []Action{tr.act("vm", nil, true), interrupted, tr.act("never", nil, true)})
	if !errors.Is(err, context.Canceled) || strings.Join(tr.did, "|") != "vm|undo vm" {
		t.Fatalf("err %v, ran %v: want the VM undone with a live context", err, tr.did)
	}
}
