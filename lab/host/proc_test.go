package host

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestMain lets a test re-run this binary as a second process (LABCTL_HELPER), e.g. to hold a
// lock as another labctl would.
func TestMain(m *testing.M) {
	switch os.Getenv("LABCTL_HELPER") {
	case "":
		os.Exit(m.Run())
	case "lock":
		l, err := TryLock(os.Getenv("LOCK_PATH"), "up")
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		l.Unlock()
		os.Exit(0)
	}
}

// groupScript starts two grandchildren in bash's group, one deaf to SIGTERM, writes their
// pids, and waits.
const groupScript = `trap '' TERM; sleep 300 & echo $! >"$PIDS"; (trap '' TERM; sleep 300) & echo $! >>"$PIDS"; echo ready >>"$PIDS"; wait`

// TestFaultCancelEndsTheWholeGroup: cancelling a Command ends its children's children too,
// even those that ignore SIGTERM (SIGKILL after Grace), and Run returns only when none is left.
func TestFaultCancelEndsTheWholeGroup(t *testing.T) {
	faulttest.Count(t, "fault", "cancel-ends-process-group")
	defer func(g time.Duration) { Grace = g }(Grace)
	Grace = time.Second
	pids := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, "bash", "-c", groupScript)
	cmd.Env = append(os.Environ(), "PIDS="+pids)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pids, "ready")
	pgid := cmd.Process.Pid
	if n := len(GroupMembers(pgid)); n < 3 {
		t.Fatalf("the group of bash has %d processes, want bash and its two children", n)
	}
	start := time.Now()
	cancel()
	err := cmd.Wait()
	took := time.Since(start)
	if left := GroupMembers(pgid); len(left) > 0 {
		t.Fatalf("processes of the group still run after Wait returned: %v", left)
	}
	if err == nil {
		t.Fatal("a cancelled command must report it")
	}
	if took > Grace+3*time.Second {
		t.Fatalf("teardown took %s (grace %s)", took, Grace)
	}
	t.Logf("group %d gone %s after cancel (grace %s)", pgid, took.Round(time.Millisecond), Grace)
}

// TestFaultCancelIsQuickForAPoliteGroup: a group that obeys SIGTERM is gone at once, well
// before the grace.
func TestFaultCancelIsQuickForAPoliteGroup(t *testing.T) {
	faulttest.Count(t, "fault", "cancel-polite-group")
	pids := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, "bash", "-c", `sleep 300 & echo $! >"$PIDS"; echo ready >>"$PIDS"; wait`)
	cmd.Env = append(os.Environ(), "PIDS="+pids)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pids, "ready")
	start := time.Now()
	cancel()
	_ = cmd.Wait()
	if took := time.Since(start); took > time.Second || len(GroupMembers(cmd.Process.Pid)) > 0 {
		t.Fatalf("a group that obeys SIGTERM took %s, left %v", took, GroupMembers(cmd.Process.Pid))
	}
}

// TestFaultSecondLockHolderIsTold: a second process asking for a held lock is refused at once
// with the holder's pid and verb; once the holder dies, the lock is free.
func TestFaultSecondLockHolderIsTold(t *testing.T) {
	faulttest.Count(t, "fault", "lock-held-by-another-process")
	path := filepath.Join(t.TempDir(), "lock")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "LABCTL_HELPER=lock", "LOCK_PATH="+path)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper: %q", line)
	}
	start := time.Now()
	l, err := TryLock(path, "provision")
	took := time.Since(start)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.PID != helper.Process.Pid || busy.What != "up" {
		l.Unlock()
		t.Fatalf("want the lock held by pid %d (up), got %v", helper.Process.Pid, err)
	}
	if took > time.Second {
		t.Fatalf("refusing took %s", took)
	}
	t.Logf("refused in %s: %v", took.Round(time.Microsecond), err)
	helper.Process.Kill()
	helper.Wait()
	l, err = TryLock(path, "provision")
	if err != nil {
		t.Fatalf("the holder died, the lock must be free: %v", err)
	}
	l.Unlock()
}

// TestFaultUnsafeDirsRefused: labctl refuses a world-writable directory, a symlink, and a
// directory of another user, says which and why, and changes nothing.
func TestFaultUnsafeDirsRefused(t *testing.T) {
	faulttest.Count(t, "input", "unsafe-directories")
	base := t.TempDir()
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, os.ModeSticky|0o777)
	if err := SafeDir(open, 0o755, true); err == nil || !strings.Contains(err.Error(), "writable by every user (mode 1777)") {
		t.Errorf("world-writable: %v", err)
	}
	if st, _ := os.Stat(open); st.Mode().Perm() != 0o777 {
		t.Errorf("the refused directory was changed: %v", st.Mode())
	}
	link := filepath.Join(base, "link")
	os.Symlink(base, link)
	if err := SafeDir(link, 0o755, false); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("symlink: %v", err)
	}
	if err := SafeDir(filepath.Join(base, "new"), 0o755, false); err != nil {
		t.Errorf("a missing directory is created: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the other-owner case needs chown")
		return
	}
	theirs := filepath.Join(base, "theirs")
	os.Mkdir(theirs, 0o755)
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := SafeDir(theirs, 0o755, false); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("another user's directory: %v", err)
	}
	if err := PrivateDir(theirs); err == nil {
		t.Error("PrivateDir took another user's directory")
	}
}

// waitFor waits until file holds a line want.
func waitFor(t *testing.T, file, want string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		data, _ := os.ReadFile(file)
		for _, l := range strings.Split(string(data), "\n") {
			if l == want {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never said %q", file, want)
}
