package provision

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
	"github.com/labctl/labctl/provision/remote/sshdtest"
)

// shortDeadlines sets CheckDeadline and ApplyDeadline for one test.
func shortDeadlines(t *testing.T, check, apply time.Duration) {
	oldC, oldA := CheckDeadline, ApplyDeadline
	CheckDeadline, ApplyDeadline = check, apply
	t.Cleanup(func() { CheckDeadline, ApplyDeadline = oldC, oldA })
}

// TestFaultGuestHoldingACommandIsStopped: a guest (over a real sshd) that holds a step's
// command open and never answers — in a check, then in an apply — fails that step once its
// deadline passed, with an error that says the guest gave no answer in how long; the command
// is killed on the far side and no later step runs. Before the deadlines, such a guest held
// `labctl provision` (and status, and up) until Ctrl-C.
func TestFaultGuestHoldingACommandIsStopped(t *testing.T) {
	faulttest.Count(t, "fault", "guest-holds-a-command")
	s := sshdtest.Start(t)
	vm := sshdVM(t, s, s.Port)
	// A sleep of a length no other process has, to find it afterwards.
	held1 := fmt.Sprintf("sleep 601.%d", time.Now().UnixNano()%1000)
	held2 := fmt.Sprintf("sleep 602.%d", time.Now().UnixNano()%1000)
	for _, tc := range []struct {
		name           string
		check          string // the check's command; it is done when it exits 0
		apply          string
		held           string // the command the guest holds
		checkD, applyD time.Duration
		within         time.Duration
	}{
		// The deadline of a command that is not held is far above what it takes on a host
		// busy with a VM.
		{name: "held check", check: held1, apply: "true", held: held1, checkD: time.Second, applyD: time.Minute, within: time.Second},
		{name: "held apply", check: "false", apply: held2, held: held2, checkD: time.Minute, applyD: 2 * time.Second, within: 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shortDeadlines(t, tc.checkD, tc.applyD)
			later := false
			steps := []Step{{Name: tc.name, Hint: "the step's hint",
				Check: func(ctx context.Context) (bool, string, error) {
					r, err := vm.Run(ctx, remote.Cmd{Line: tc.check})
					return err == nil && r.OK(), "run " + tc.apply, err
				},
				Apply: func(ctx context.Context) error {
					_, err := remote.Must(ctx, vm, remote.Cmd{Line: tc.apply})
					return err
				}},
				{Name: "later", Check: func(context.Context) (bool, string, error) { later = true; return true, "", nil }}}
			var out strings.Builder
			start := time.Now()
			_, err := RunSteps(context.Background(), steps, &out, false)
			took := time.Since(start)
			var silent *SilentError
			if !errors.As(err, &silent) || silent.After != tc.within {
				t.Fatalf("the step ended with %v, want a SilentError after %s\n%s", err, tc.within, out.String())
			}
			want := fmt.Sprintf("the guest gave no answer in %s", tc.within)
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), "the step's hint") {
				t.Errorf("the error must name the step, say %q and keep the hint: %v", want, err)
			}
			if took > tc.within+15*time.Second {
				t.Errorf("the run ended %s after it began: the deadline was %s", took, tc.within)
			}
			if !strings.Contains(out.String(), "failed    "+tc.name) {
				t.Errorf("the step's line must say failed:\n%s", out.String())
			}
			if later {
				t.Error("a step after the failed one was checked")
			}
			if out, err := exec.Command("pgrep", "-f", "^"+tc.held).Output(); err == nil {
				t.Errorf("the held command still runs on the far side: pids %s", out)
			}
		})
	}
}

// silentVM is a guest that takes every command and never answers: its commands end only with
// their context (as a real transport's do, tried over sshd above).
type silentVM struct{ calls int }

func (v *silentVM) Name() string        { return "vm" }
func (v *silentVM) Level() remote.Level { return remote.LevelHost }
func (v *silentVM) Run(ctx context.Context, c remote.Cmd) (remote.Result, error) {
	v.calls++
	<-ctx.Done()
	return remote.Result{ExitCode: -1}, fmt.Errorf("`%s`: %w", c.Line, ctx.Err())
}

// TestFaultSilentGuestFactsAndStatusEnd: the facts that every verb reads first and the
// container states that status reads end with a SilentError at CheckDeadline when the guest
// never answers; a run interrupted by its caller (Ctrl-C) is not called silent.
func TestFaultSilentGuestFactsAndStatusEnd(t *testing.T) {
	faulttest.Count(t, "fault", "silent-guest-facts-and-status")
	shortDeadlines(t, 300*time.Millisecond, time.Second)
	vm := &silentVM{}
	var silent *SilentError
	if _, err := GatherFacts(context.Background(), vm, "vagrant"); !errors.As(err, &silent) || !strings.Contains(err.Error(), "gather facts") {
		t.Fatalf("facts of a silent guest: %v, want a SilentError", err)
	}
	s := &spec.Spec{Name: "lab", Containers: []spec.Container{{Name: "box1"}}}
	p := &Provisioner{Spec: s, VM: vm}
	if _, err := p.State(context.Background(), "box1"); !errors.As(err, &silent) {
		t.Fatalf("the state of a container of a silent guest: %v, want a SilentError", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := GatherFacts(ctx, vm, "vagrant"); errors.As(err, &silent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller's own end must stay its own, not a silent guest: %v", err)
	}
	if vm.calls != 3 {
		t.Errorf("the guest was asked %d times, want 3", vm.calls)
	}
}
