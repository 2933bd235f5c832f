package remote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/provision/remote/sshdtest"
)

// proxied dials the test's server through a proxy that can stall or cut the connection, with
// labctl's default keepalives.
func proxied(t *testing.T) (*Comm, *sshdtest.Proxy) {
	t.Helper()
	s := sshdtest.Start(t)
	p := sshdtest.NewProxy(t, s.Port)
	cfg := config(s, filepath.Join(t.TempDir(), "known_hosts"))
	cfg.Port, cfg.KeepAlive = p.Port, 0
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p
}

// TestFaultSSHStall20s: the network (or an emulated guest) answers nothing for 20 s while a
// command runs: the connection is kept (keepalives tolerate the misses) and the command's
// result arrives whole.
func TestFaultSSHStall20s(t *testing.T) {
	if os.Getenv("LABCTL_LONG_FAULTS") != "1" {
		t.Skip("SKIP reason: takes 20 s; make test-faults runs it (LABCTL_LONG_FAULTS=1); TestFaultSSHStallShortKeepalive covers the same in 3 s")
	}
	faulttest.Count(t, "fault", "ssh-stall-20s")
	c, p := proxied(t)
	go func() { time.Sleep(500 * time.Millisecond); p.Stall(20 * time.Second) }()
	start := time.Now()
	r, err := c.Run(context.Background(), "sleep 2; echo done", RunOpts{})
	if err != nil || strings.TrimSpace(r.Stdout) != "done" {
		t.Fatalf("a 20 s stall aborted the command: %+v %v", r, err)
	}
	if d := time.Since(start); d < 19*time.Second {
		t.Fatalf("the stall did not happen (%s)", d)
	}
	if c.Dials != 1 {
		t.Fatalf("the stall dropped the connection: %d dials", c.Dials)
	}
}

// TestFaultSSHCutMidCommand: the connection is cut while a command runs; the command goes on
// on the far side. Run reconnects, waits until it has ended, and says the connection was cut
// (CutError): what the command did is there, done once.
func TestFaultSSHCutMidCommand(t *testing.T) {
	t.Parallel() // its own sshd
	faulttest.Count(t, "fault", "ssh-cut-mid-command")
	c, p := proxied(t)
	mark := filepath.Join(t.TempDir(), "ran")
	go func() { time.Sleep(time.Second); p.Cut() }()
	_, err := c.Run(context.Background(), "sleep 3; echo once >> "+Quote(mark), RunOpts{})
	var cut *CutError
	if !errors.As(err, &cut) {
		t.Fatalf("want a CutError, got %v", err)
	}
	r, err := c.Run(context.Background(), "cat "+Quote(mark), RunOpts{})
	if err != nil || r.Stdout != "once\n" {
		t.Fatalf("the cut command must have run to its end exactly once: %q %v", r.Stdout, err)
	}
	if c.Dials < 2 {
		t.Fatalf("no reconnect after the cut: %d dials", c.Dials)
	}
}

// TestFaultSSHStallShortKeepalive: with a 1 s keepalive, a 3 s stall (three missed answers)
// still keeps the connection: only KeepAliveMisses (4) in a row drop it.
func TestFaultSSHStallShortKeepalive(t *testing.T) {
	t.Parallel() // its own sshd
	faulttest.Count(t, "fault", "ssh-stall-keepalive-misses")
	s := sshdtest.Start(t)
	p := sshdtest.NewProxy(t, s.Port)
	cfg := config(s, filepath.Join(t.TempDir(), "known_hosts"))
	cfg.Port, cfg.KeepAlive = p.Port, time.Second
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { time.Sleep(300 * time.Millisecond); p.Stall(3 * time.Second) }()
	r, err := c.Run(context.Background(), "sleep 1; echo done", RunOpts{})
	if err != nil || strings.TrimSpace(r.Stdout) != "done" || c.Dials != 1 {
		t.Fatalf("a 3 s stall with a 1 s keepalive aborted the command: %+v %v (dials %d)", r, err, c.Dials)
	}
}
