//go:build vm

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
)

// TestVMInterruptEveryStep interrupts `labctl provision` with SIGINT while each step's apply
// runs, on a real lab restored to a fresh, booted, unprovisioned VM for every step; then runs
// `labctl provision` again (it must succeed and report the step), and a third time (it must
// change nothing), and compares every managed file with a lab that was never interrupted. Then
// the same for `labctl up` interrupted in each of its phases. It prints one line per
// interruption point. It takes about an hour under TCG: `make test-interrupt`.
func TestVMInterruptEveryStep(t *testing.T) {
	if os.Getenv("LABCTL_VM_TESTS") != "1" {
		t.Skip("SKIP reason: boots a real VM for an hour; set LABCTL_VM_TESTS=1 (make test-interrupt does)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, root: root}
	h.writeSpec()
	h.labctl(0, "destroy")
	t.Cleanup(func() { h.labctl(-1, "destroy") })

	// A fresh, booted VM: `up` interrupted as provisioning begins, kept.
	out, code := h.interrupt([]string{"up", "--keep-on-failure"}, regexp.MustCompile(`^facts: `), 0)
	if code == 0 {
		t.Fatalf("up was not interrupted:\n%s", out)
	}
	h.labctl(0, "snapshot", "save", "fresh")
	// The reference: provisioned without interruption, its files' checksums and its steps.
	ref := h.labctl(0, "provision")
	want := h.checksums()
	var steps []string
	for _, m := range regexp.MustCompile(`(?m)^  changed   (.+?)  +\S+  \(`).FindAllStringSubmatch(ref, -1) {
		steps = append(steps, strings.TrimSpace(m[1]))
	}
	if len(steps) < 10 {
		t.Fatalf("the reference run changed only %d steps:\n%s", len(steps), ref)
	}
	var lines []string
	for _, step := range steps {
		h.labctl(0, "snapshot", "restore", "fresh")
		start := time.Now()
		delay := 500 * time.Millisecond
		if d, ok := stepDelay[step]; ok {
			delay = d
		}
		out, code := h.interrupt([]string{"provision"}, regexp.MustCompile(`^  applying  `+regexp.QuoteMeta(step)+` `), delay)
		left := lastStepLine(out)
		if code == 0 {
			lines = append(lines, fmt.Sprintf("%-24s not interrupted (the apply ended within %s)", step, delay))
			continue
		}
		second := h.labctl(-1, "provision")
		ok := regexp.MustCompile(`(?m)^  (changed|ok) +` + regexp.QuoteMeta(step) + ` `).MatchString(second)
		third := h.labctl(-1, "provision")
		again := strings.Contains(third, "\n0 changed, ")
		same := h.checksums() == want
		verdict := "converged"
		if !ok || !again || !same {
			verdict = "DID NOT CONVERGE"
			t.Errorf("%s: step reported %v, third run 0 changed %v, files as never interrupted %v\nsecond run:\n%s\nthird run:\n%s", step, ok, again, same, second, third)
		}
		lines = append(lines, fmt.Sprintf("%-24s left %-40q next run %s (%s)", step, left, verdict, time.Since(start).Round(time.Second)))
	}
	// The lab left by the last point is proved by the e2e suite.
	suite := exec.Command("go", "tool", "ginkgo", "./e2e", "--", "-f", h.spec, "-labctl", bin)
	suite.Dir = root
	suiteOut, err := suite.CombinedOutput()
	lines = append(lines, "e2e suite on the converged lab: "+lastMatch(string(suiteOut), `e2e: .*`))
	if err != nil {
		t.Errorf("the e2e suite failed on the converged lab: %v\n%s", err, suiteOut)
	}

	// `up` interrupted in each of its phases, then `up` again.
	for _, ph := range []struct {
		name  string
		after *regexp.Regexp
		delay time.Duration
	}{
		{"host", regexp.MustCompile(`^lab \S+: `), 0},
		{"vagrant up", regexp.MustCompile(`^vm: vagrant up`), 20 * time.Second},
		{"ssh", regexp.MustCompile(`Machine booted and ready`), 0},
		{"provision", regexp.MustCompile(`^  applying  create box1`), 25 * time.Second},
	} {
		h.labctl(0, "destroy")
		start := time.Now()
		out, code := h.interrupt([]string{"up"}, ph.after, ph.delay)
		left := h.labctl(-1, "status")
		if code == 0 {
			lines = append(lines, fmt.Sprintf("up/%-21s not interrupted", ph.name))
			continue
		}
		again := h.labctl(-1, "up")
		verdict := "converged"
		if !strings.Contains(again, " is up in ") || h.checksums() != want {
			verdict = "DID NOT CONVERGE"
			t.Errorf("up interrupted in %s:\n%s\nthen up:\n%s", ph.name, out, again)
		}
		lines = append(lines, fmt.Sprintf("up/%-21s left %-40q next up %s (%s)", ph.name, firstLine(left), verdict, time.Since(start).Round(time.Second)))
	}
	t.Log("interruption points:\n" + strings.Join(lines, "\n"))
	fmt.Println("=== interruption points\n" + strings.Join(lines, "\n"))
}

// stepDelay is how long after a step's "applying" line the interrupt comes, for steps whose
// apply is long enough to be cut in its middle (the rest get 0.5 s).
var stepDelay = map[string]time.Duration{
	"create box1":       25 * time.Second, // past the upload, inside lxc-create's unpacking
	"create n1 in box1": 3 * time.Second,
	"start box1":        2 * time.Second,
	"box1 address":      2 * time.Second,
}

type harness struct {
	t          *testing.T
	root, spec string
}

// writeSpec writes the bookworm preset as a lab of its own name, so that the user's bookworm
// lab is never touched.
func (h *harness) writeSpec() {
	s, err := spec.Preset("bookworm")
	if err != nil {
		h.t.Fatal(err)
	}
	s.Name = "interrupt"
	data, err := s.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	h.spec = filepath.Join(h.t.TempDir(), "lab.yaml")
	if err := os.WriteFile(h.spec, data, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// labctl runs a verb on the test's lab; want is the exit code it must end with (-1: any).
func (h *harness) labctl(want int, args ...string) string {
	h.t.Helper()
	cmd := exec.Command(bin, append(args, "-f", h.spec)...)
	cmd.Dir = h.root
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	if want >= 0 && code != want {
		h.t.Fatalf("labctl %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return string(out)
}

// interrupt runs a verb, sends it SIGINT delay after a line matching at appears, and returns
// its output and exit code. labctl must end within 30 s of the signal.
func (h *harness) interrupt(args []string, at *regexp.Regexp, delay time.Duration) (string, int) {
	h.t.Helper()
	cmd := exec.Command(bin, append(args, "-f", h.spec)...)
	cmd.Dir = h.root
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	var out strings.Builder
	sent := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		armed := true
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if armed && at.MatchString(line) {
				armed = false
				go func() {
					time.Sleep(delay)
					sent <- time.Now()
					_ = cmd.Process.Signal(syscall.SIGINT)
				}()
			}
		}
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	select {
	case at := <-sent:
		if took := time.Since(at); took > 30*time.Second {
			h.t.Errorf("labctl %s took %s to end after SIGINT", strings.Join(args, " "), took.Round(time.Second))
		}
	default:
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return out.String(), code
}

// checksums reads, as root on the VM, the sha256 of every file the provisioner manages (files
// inside box1 through its rootfs on the VM), in one command.
func (h *harness) checksums() string {
	h.t.Helper()
	s, err := spec.Load(h.spec)
	if err != nil {
		h.t.Fatal(err)
	}
	files, err := render.Guest(s, render.GuestInputs{LXCVersion: s.LXC.Version})
	if err != nil {
		h.t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.VMPath)
	}
	sort.Strings(paths)
	return h.labctl(-1, "exec", "--sudo", "--", "sh", "-c", "sha256sum "+strings.Join(paths, " ")+" 2>&1; ls -a /mnt/box1 2>&1")
}

func lastStepLine(out string) string {
	return lastMatch(out, `(?m)^  (interrupted|failed) .*`)
}

func lastMatch(s, re string) string {
	all := regexp.MustCompile(re).FindAllString(s, -1)
	if len(all) == 0 {
		return ""
	}
	return strings.TrimSpace(all[len(all)-1])
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
