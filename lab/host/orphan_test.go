package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultOrphanVagrantIsWaitedFor: a vagrant process of the lab's machine left running by a
// labctl that was SIGKILLed (the chaos soak: a killed `snapshot save` left `vagrant snapshot
// save`, and the next `up` failed, Vagrant's machine locked) is waited for until it ends; a
// process of another name with the same environment is not; a vagrant that outlives the wait is
// named in the error.
func TestFaultOrphanVagrantIsWaitedFor(t *testing.T) {
	faulttest.Count(t, "fault", "orphan-vagrant-waited-for")
	dir := t.TempDir()
	vagrant := filepath.Join(dir, "vagrant")
	if err := os.WriteFile(vagrant, []byte("#!/bin/sh\nsleep \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kv := "VAGRANT_CWD=" + filepath.Join(dir, "lab")
	start := func(name string, secs string) *exec.Cmd {
		cmd := exec.Command(name, secs)
		cmd.Env = append(os.Environ(), kv)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	orphan := start(vagrant, "1.5")
	other := start("sleep", "30") // not a vagrant: never waited for
	time.Sleep(200 * time.Millisecond)
	var told []int
	begin := time.Now()
	go func() { _ = orphan.Wait() }()
	err := WaitForEnv(context.Background(), kv, []string{"vagrant", "ruby"}, 20*time.Second, func(p []int) { told = p })
	took := time.Since(begin)
	if err != nil || !slices.Contains(told, orphan.Process.Pid) || slices.Contains(told, other.Process.Pid) {
		t.Fatalf("waited %s: %v; told %v (vagrant %d, other %d)", took, err, told, orphan.Process.Pid, other.Process.Pid)
	}
	if took < time.Second || took > 10*time.Second {
		t.Fatalf("the wait took %s: it must last until the vagrant ended (~1.3 s)", took)
	}
	stuck := start(vagrant, "30")
	time.Sleep(200 * time.Millisecond)
	err = WaitForEnv(context.Background(), kv, []string{"vagrant"}, 300*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("kill %d", stuck.Process.Pid)) {
		t.Fatalf("a vagrant that outlives the wait must be named with what to do: %v", err)
	}
}
