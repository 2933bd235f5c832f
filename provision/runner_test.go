package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labctl/labctl/provision/remote"
)

// world is what fake steps read and write: a set of facts, the checks running, and the
// most checks ever seen running at once.
type world struct {
	mu      sync.Mutex
	facts   map[string]bool
	running int32
	most    int32
	checks  map[string]int
	log     []string
}

func newWorld() *world { return &world{facts: map[string]bool{}, checks: map[string]int{}} }

func (w *world) has(k string) bool { w.mu.Lock(); defer w.mu.Unlock(); return w.facts[k] }

func (w *world) set(k string, v bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.facts[k] = v
	w.log = append(w.log, fmt.Sprintf("apply %s=%v", k, v))
}

// step is done when its fact holds; its apply sets the fact, and with breaks clears another
// step's. A check takes a little time, so that checks ahead overlap.
func (w *world) step(t *testing.T, name string, breaks string) Step {
	return Step{
		Name: name,
		Check: func(ctx context.Context) (bool, string, error) {
			if !remote.OnlyReads(ctx) {
				t.Errorf("step %s checked without its commands marked as reads", name)
			}
			n := atomic.AddInt32(&w.running, 1)
			defer atomic.AddInt32(&w.running, -1)
			for {
				m := atomic.LoadInt32(&w.most)
				if n <= m || atomic.CompareAndSwapInt32(&w.most, m, n) {
					break
				}
			}
			w.mu.Lock()
			w.checks[name]++
			w.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			return w.has(name), "set " + name, nil
		},
		Apply: func(ctx context.Context) error {
			if remote.OnlyReads(ctx) {
				t.Errorf("step %s applied with its commands marked as reads", name)
			}
			if r := atomic.LoadInt32(&w.running); r != 0 {
				t.Errorf("step %s applied while %d checks ran", name, r)
			}
			w.set(name, true)
			if breaks != "" {
				w.set(breaks, false)
			}
			return nil
		},
	}
}

// TestChecksAheadOnADoneLabRunAtOnce: on steps that are all done, checks run ahead at once
// (up to the limit), each once, and the report is in step order.
func TestChecksAheadOnADoneLabRunAtOnce(t *testing.T) {
	w := newWorld()
	var steps []Step
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("s%02d", i)
		w.facts[name] = true
		steps = append(steps, w.step(t, name, ""))
	}
	var out strings.Builder
	sum, err := RunStepsAhead(context.Background(), steps, &out, false, 4)
	if err != nil || sum.OK != 12 || sum.Changed != 0 {
		t.Fatalf("%s %v\n%s", sum, err, out.String())
	}
	if w.most < 2 || w.most > 4 {
		t.Fatalf("at most %d checks ran at once, want 2 to 4", w.most)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, st := range steps {
		if !strings.Contains(lines[i], st.Name) || w.checks[st.Name] != 1 {
			t.Fatalf("line %d %q for step %s (checked %d times):\n%s", i, lines[i], st.Name, w.checks[st.Name], out.String())
		}
	}
	// Without checks ahead, one at a time.
	w.most = 0
	if _, err := RunStepsAhead(context.Background(), steps, &out, false, 0); err != nil || w.most != 1 {
		t.Fatalf("ahead 0: %v, %d checks at once", err, w.most)
	}
}

// TestChecksAheadNeverOutliveAnApply: a check run ahead found step c done, but the apply of
// b (before it) undoes c: c is checked again after the apply and applied, and no apply runs
// beside a check.
func TestChecksAheadNeverOutliveAnApply(t *testing.T) {
	w := newWorld()
	w.facts["a"], w.facts["c"], w.facts["d"] = true, true, true
	steps := []Step{w.step(t, "a", ""), w.step(t, "b", "c"), w.step(t, "c", ""), w.step(t, "d", "")}
	var out strings.Builder
	sum, err := RunStepsAhead(context.Background(), steps, &out, false, 4)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sum.Changed != 2 || strings.Join(sum.Changes, ",") != "b,c" || !w.has("c") {
		t.Fatalf("%s, changed %v, c done %v: want b and c applied\n%s", sum, sum.Changes, w.has("c"), out.String())
	}
}

// TestAFailedCheckAheadIsCheckedAgain: a check that fails when run ahead (what a check of a
// container that a step before it creates does) is run again in its turn; only that verdict
// counts.
func TestAFailedCheckAheadIsCheckedAgain(t *testing.T) {
	var calls int32
	flaky := Step{Name: "flaky",
		Check: func(ctx context.Context) (bool, string, error) {
			if atomic.AddInt32(&calls, 1) == 1 {
				return false, "", errors.New("not reachable yet")
			}
			return true, "", nil
		}}
	w := newWorld()
	w.facts["a"] = true
	var out strings.Builder
	sum, err := RunStepsAhead(context.Background(), []Step{w.step(t, "a", ""), flaky}, &out, false, 4)
	if err != nil || sum.OK != 2 || calls != 2 {
		t.Fatalf("%s %v, flaky checked %d times\n%s", sum, err, calls, out.String())
	}
}
