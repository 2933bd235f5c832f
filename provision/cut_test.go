package provision

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/provision/remote"
	"github.com/labctl/labctl/provision/remote/sshdtest"
)

// TestFaultCutDuringApply: the connection is cut while a step's apply runs its command. labctl
// reconnects, waits for the command to end on the far side, checks again, and reports the step
// changed: the apply ran exactly once, and the run goes on.
func TestFaultCutDuringApply(t *testing.T) {
	faulttest.Count(t, "fault", "cut-during-apply")
	s := sshdtest.Start(t)
	p := sshdtest.NewProxy(t, s.Port)
	vm := sshdVM(t, s, p.Port)
	mark := filepath.Join(t.TempDir(), "applied")
	applies := 0
	step := Step{Name: "slow apply",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := vm.Run(ctx, remote.Cmd{Line: remote.Shf("test -s %s", mark)})
			return err == nil && r.OK(), "write " + mark, err
		},
		Apply: func(ctx context.Context) error {
			applies++
			go func() { time.Sleep(time.Second); p.Cut() }()
			_, err := remote.Must(ctx, vm, remote.Cmd{Line: remote.Shf("sleep 3; echo once >> %s", mark)})
			return err
		}}
	after := Step{Name: "next step", Check: func(ctx context.Context) (bool, string, error) {
		r, err := vm.Run(ctx, remote.Cmd{Line: "true"})
		return err == nil && r.OK(), "", err
	}, Apply: func(context.Context) error { return nil }}
	var out strings.Builder
	sum, err := RunSteps(context.Background(), []Step{step, after}, &out, false)
	if err != nil || sum.Changed != 1 || sum.OK != 1 {
		t.Fatalf("%s %v\n%s", sum, err, out.String())
	}
	if !strings.Contains(out.String(), "changed   slow apply") || !strings.Contains(out.String(), "connection was cut") {
		t.Fatalf("the step's line must say it changed, and that the connection was cut:\n%s", out.String())
	}
	data, _ := os.ReadFile(mark)
	if applies != 1 || string(data) != "once\n" {
		t.Fatalf("the apply ran %d times, its command left %q", applies, data)
	}
}

// sshdVM is a VM target over one connection to the test's sshd s, reached at port (its own,
// or a proxy's in front of it); the connection is closed when the test ends.
func sshdVM(t *testing.T, s *sshdtest.Server, port int) *remote.SSHVM {
	t.Helper()
	c, err := remote.Dial(context.Background(), remote.SSHConfig{Host: "127.0.0.1", Port: port, User: s.User,
		IdentityFiles: []string{s.ClientKey}, KnownHosts: filepath.Join(t.TempDir(), "known_hosts"), BootTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &remote.SSHVM{Conn: c}
}
