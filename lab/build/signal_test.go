package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

// stubStuckBox stands in for a box build that is busy when the signal comes: a child that
// obeys SIGTERM, one that ignores it (as dpkg in a chroot may), a half-written $OUT.part and a
// work directory. It writes the pids of its group to $PIDS.
const stubStuckBox = `set -euo pipefail
echo run >>"$COUNT"
mkdir -p "$WORK/rootfs" && echo partial >"$OUT.part"
sleep 300 & polite=$!
trap '' TERM
sleep 300 & deaf=$!
echo "$$ $polite $deaf" >"$PIDS"
wait
`

// TestMain runs this binary as a stand-in for labctl when LABCTL_HELPER says so: it builds a
// box with the stuck stub under the interrupt handling labctl's main uses.
func TestMain(m *testing.M) {
	if os.Getenv("LABCTL_HELPER") != "build-box" {
		os.Exit(m.Run())
	}
	boxScript = stubStuckBox
	hostReady = func(string, string, ...string) ([]string, error) {
		return []string{"deb http://mirror.invalid/debian bookworm main"}, nil
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer host.Interrupts(cancel, os.Stderr)()
	s, err := specFor("bookworm")
	if err == nil {
		_, err = BuildBox(ctx, s, os.Stdout, io.Discard)
	}
	var in host.Interrupted
	if errors.As(context.Cause(ctx), &in) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(in.ExitCode())
	}
	fmt.Fprintln(os.Stderr, "helper: not interrupted:", err)
	os.Exit(3)
}

// buildHelper starts the stand-in labctl on a cache of the test's own and waits until the
// stub runs; it returns the process and the pids of the stub's group.
func buildHelper(t *testing.T) (*exec.Cmd, []int) {
	t.Helper()
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	t.Setenv("LABCTL_CACHE", filepath.Join(dir, "cache"))
	t.Setenv("COUNT", filepath.Join(dir, "count"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LABCTL_HELPER=build-box", "PIDS="+pids)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	for i := 0; i < 400; i++ {
		if data, err := os.ReadFile(pids); err == nil && strings.Count(string(data), " ") == 2 {
			var out []int
			for _, f := range strings.Fields(string(data)) {
				n, _ := strconv.Atoi(f)
				out = append(out, n)
			}
			return cmd, out
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("the stub build never started")
	return nil, nil
}

// leftovers lists what an interrupted build must not leave: live processes of the stub's
// group, and .work or .part files in the cache.
func leftovers(t *testing.T, pids []int) []string {
	t.Helper()
	var left []string
	for _, p := range host.GroupMembers(pids[0]) {
		left = append(left, fmt.Sprintf("process %d of the build's group", p))
	}
	filepath.Walk(os.Getenv("LABCTL_CACHE"), func(p string, info os.FileInfo, err error) error {
		if err == nil && (strings.HasSuffix(p, ".work") || strings.HasSuffix(p, ".part")) {
			left = append(left, p)
		}
		return nil
	})
	return left
}

func exitCode(t *testing.T, cmd *exec.Cmd, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), time.Since(start)
		}
		return 0, time.Since(start)
	case <-time.After(within):
		t.Fatalf("labctl did not exit within %s", within)
		return -1, within
	}
}

// nextRunSucceeds: after the interruption, the next build of the recipe succeeds.
func nextRunSucceeds(t *testing.T) {
	t.Helper()
	oldBox, oldReady := boxScript, hostReady
	defer func() { boxScript, hostReady = oldBox, oldReady }()
	boxScript = stubBox
	hostReady = func(string, string, ...string) ([]string, error) { return []string{"deb x"}, nil }
	r, err := specFor("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err != nil {
		t.Fatalf("the run after the interruption failed: %v", err)
	}
	if err := verifyEntry(r.Dir(), r.Key()); err != nil {
		t.Fatalf("the run after the interruption left no usable box: %v", err)
	}
}

// TestFaultSIGTERMDuringBuildLeavesNothing: SIGTERM to labctl during a box build ends the
// whole build (grandchildren included, even one deaf to SIGTERM) within 10 s, leaves no
// .work or .part in the cache, and the next run succeeds.
func TestFaultSIGTERMDuringBuildLeavesNothing(t *testing.T) {
	faulttest.Count(t, "fault", "sigterm-during-box-build")
	cmd, pids := buildHelper(t)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	code, _ := exitCode(t, cmd, 10*time.Second)
	took := time.Since(start)
	if left := leftovers(t, pids); len(left) > 0 {
		t.Fatalf("%s after SIGTERM, left: %v", took.Round(time.Millisecond), left)
	}
	if code != 143 {
		t.Errorf("exit code %d after SIGTERM, want 143", code)
	}
	t.Logf("SIGTERM -> labctl gone, its build's group (pids %v) gone, cache clean in %s", pids, took.Round(time.Millisecond))
	nextRunSucceeds(t)
}

// TestFaultSecondSignalExitsAtOnce: a second signal makes labctl kill the build's group and
// exit 130 at once, without waiting for the grace; the next run cleans up and succeeds.
func TestFaultSecondSignalExitsAtOnce(t *testing.T) {
	faulttest.Count(t, "fault", "second-signal-during-box-build")
	cmd, pids := buildHelper(t)
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	code, took := exitCode(t, cmd, 10*time.Second)
	if code != 130 || took > time.Second {
		t.Fatalf("after the second signal labctl exited %d in %s, want 130 within 1 s", code, took)
	}
	deadline := time.Now().Add(time.Second)
	for len(host.GroupMembers(pids[0])) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := host.GroupMembers(pids[0]); len(left) > 0 {
		t.Fatalf("processes of the build's group outlived labctl: %v", left)
	}
	t.Logf("second SIGINT -> exit %d in %s, group gone", code, took.Round(time.Millisecond))
	nextRunSucceeds(t)
	if left := leftovers(t, pids); len(left) > 0 {
		t.Fatalf("the next run left %v", left)
	}
}

func specFor(release string) (BoxRecipe, error) {
	s, err := specPreset(release)
	if err != nil {
		return BoxRecipe{}, err
	}
	return BoxRecipeFor(s)
}

var specPreset = spec.Preset
