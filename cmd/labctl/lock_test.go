package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/host"
)

// TestFaultLabInUseIsRefused: while one `labctl up` works on a lab (here: stuck in `vagrant
// status`), a second up, provision or destroy of that lab exits within a second with "lab X
// is in use by pid N (up)" and changes nothing. SIGTERM then ends the first, its vagrant and
// vagrant's child, and frees the lab.
func TestFaultLabInUseIsRefused(t *testing.T) {
	faulttest.Count(t, "fault", "lab-in-use")
	f := newFakeLab(t)
	f.vagrantTracks(t, "")
	f.set(t, "hang-vagrant-status", "")
	first := exec.Command(bin, "up", "-f", "lab.yaml")
	first.Dir, first.Env = f.dir, f.env
	var firstErr strings.Builder
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	hung := filepath.Join(f.libvirt, "hung")
	for i := 0; i < 200; i++ {
		if data, _ := os.ReadFile(hung); strings.HasSuffix(string(data), "\n") {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if _, err := os.Stat(hung); err != nil {
		t.Fatalf("the first up never reached vagrant status:\n%s", f.log(t))
	}
	want := fmt.Sprintf("lab %s is in use by pid %d (up)", fakeLabName, first.Process.Pid)
	for _, verb := range []string{"up", "provision", "destroy"} {
		start := time.Now()
		_, errOut, code := f.labctl(t, verb)
		took := time.Since(start)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("a second %s: exit %d in %s, want %q:\n%s", verb, code, took, want, errOut)
		}
		if took > time.Second {
			t.Errorf("a second %s took %s to be refused", verb, took)
		}
		t.Logf("second %s refused in %s: %s", verb, took.Round(time.Millisecond), strings.TrimSpace(errOut))
	}
	if d := destructive(f.log(t)); len(d) > 0 {
		t.Fatalf("a refused verb destroyed: %v", d)
	}
	var pid, child int
	data, _ := os.ReadFile(hung)
	fmt.Sscan(string(data), &pid, &child)
	start := time.Now()
	first.Process.Signal(syscall.SIGTERM)
	err := first.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("the first up after SIGTERM: %v, want exit 143\n%s", err, firstErr.String())
	}
	if host.Alive(pid) || host.Alive(child) || took > 10*time.Second {
		t.Fatalf("%s after SIGTERM: vagrant (%d) alive %v, its child (%d) alive %v", took, pid, host.Alive(pid), child, host.Alive(child))
	}
	t.Logf("SIGTERM to the first up: it and vagrant's group gone in %s", took.Round(time.Millisecond))
	os.Remove(filepath.Join(f.libvirt, "hang-vagrant-status"))
	if _, errOut, code := f.labctl(t, "halt"); code != 0 {
		t.Fatalf("the lab must be free once its user ended: %d %s", code, errOut)
	}
}
