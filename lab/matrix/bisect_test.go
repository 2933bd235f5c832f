package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/spec"
)

// TestBisectFindsTheFirstBad plants the first bad candidate at every place of ranges of every
// length and checks Bisect finds it in at most ⌈log2 n⌉ probes, never probing the known-bad last.
func TestBisectFindsTheFirstBad(t *testing.T) {
	for n := 1; n <= 17; n++ {
		for k := 0; k < n; k++ {
			var probed []int
			first, amb, err := Bisect(context.Background(), n, func(_ context.Context, i int) (Verdict, error) {
				probed = append(probed, i)
				if i >= k {
					return Bad, nil
				}
				return Good, nil
			})
			if err != nil || first != k || amb != nil {
				t.Fatalf("n=%d planted at %d: found %d %v %v", n, k, first, amb, err)
			}
			if len(probed) > steps(n) {
				t.Errorf("n=%d k=%d: %d probes %v, want at most %d", n, k, len(probed), probed, steps(n))
			}
			for _, i := range probed {
				if i == n-1 {
					t.Errorf("n=%d: probed the known-bad last candidate", n)
				}
			}
		}
	}
}

// TestBisectSkips: a candidate that cannot say (does not build) is passed over; when only such
// candidates stand between the last good and the first bad, the answer is that range.
func TestBisectSkips(t *testing.T) {
	for _, c := range []struct {
		n, k    int
		skip    []int
		first   int
		between []int
	}{
		{n: 8, k: 5, skip: []int{3}, first: 5},
		{n: 8, k: 5, skip: []int{2, 3, 6}, first: 5},
		// The one before the first bad is skipped: 5 is the first bad only if 4 would be good,
		// which Bisect cannot know: it answers the range {4, 5}.
		{n: 8, k: 5, skip: []int{4}, first: 5, between: []int{4}},
		{n: 8, k: 5, skip: []int{5}, first: 6, between: []int{5}},
		{n: 8, k: 5, skip: []int{4, 5}, first: 6, between: []int{4, 5}},
		{n: 4, k: 3, skip: []int{0, 1, 2}, first: 3, between: []int{0, 1, 2}},
	} {
		skipped := map[int]bool{}
		for _, i := range c.skip {
			skipped[i] = true
		}
		first, amb, err := Bisect(context.Background(), c.n, func(_ context.Context, i int) (Verdict, error) {
			switch {
			case skipped[i]:
				return Skip, nil
			case i >= c.k:
				return Bad, nil
			}
			return Good, nil
		})
		if err != nil || first != c.first || fmt.Sprint(amb) != fmt.Sprint(c.between) {
			t.Errorf("n=%d bad from %d skipping %v: first %d between %v (%v), want %d between %v", c.n, c.k, c.skip, first, amb, err, c.first, c.between)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Bisect(ctx, 8, func(context.Context, int) (Verdict, error) { return Good, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled bisection: %v", err)
	}
}

// gitHistory makes a git checkout with n commits (c0 the first) and returns it and the commits.
func gitHistory(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	var commits []string
	for i := 0; i < n; i++ {
		os.WriteFile(filepath.Join(dir, "f"), []byte(fmt.Sprint(i)), 0o644)
		git("add", "f")
		git("commit", "-q", "-m", fmt.Sprintf("c%d", i))
		commits = append(commits, git("rev-parse", "HEAD"))
	}
	return dir, commits
}

func bisectMatrix(t *testing.T, src, good, bad, badExtra string) *File {
	t.Helper()
	f, err := Parse([]byte(fmt.Sprintf(`cells:
  - name: good
    preset: trixie
    lab:
      lxc: {source: %s, ref: %s, version: 6.0.3, expect: "~> 6.0.3"}
  - name: bad
    preset: trixie
    lab:
      lxc: {source: %s, ref: %s, version: 6.0.4, expect: "~> 6.0.4"}
%s`, src, good, src, bad, badExtra)), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCandidates: the LXC axis is the commits after the good cell's up to the bad cell's; the
// kernel axis the grid's kernels between the two; anything else is refused with why.
func TestCandidates(t *testing.T) {
	src, commits := gitHistory(t, 6)
	f := bisectMatrix(t, src, commits[1][:7], commits[5][:7], "")
	axis, probes, err := Candidates(context.Background(), f, f.Cells[0], f.Cells[1])
	if err != nil || axis != "lxc" || len(probes) != 4 {
		t.Fatalf("axis %q, %d probes, %v", axis, len(probes), err)
	}
	for i, p := range probes[:3] {
		c := commits[i+2]
		if p.What != c[:12]+" c"+fmt.Sprint(i+2) || p.Cell.Name != "bisect-"+c[:12] || p.Cell.Spec.LXC.Ref != c[:12] || p.Cell.Spec.LXC.Expect != ">= 6.0.3" {
			t.Errorf("probe %d: %q cell %s ref %s expect %q", i, p.What, p.Cell.Name, p.Cell.Spec.LXC.Ref, p.Cell.Spec.LXC.Expect)
		}
		if err := p.Cell.Spec.Validate(); err != nil {
			t.Errorf("probe %d's lab does not validate: %v", i, err)
		}
	}
	if last := probes[3]; last.Cell.Name != "bad" || !strings.HasSuffix(last.What, " c5") {
		t.Errorf("the last candidate is %q (%s), want the bad cell", last.What, last.Cell.Name)
	}
	// Refused: reversed refs (no ancestry path), cells that differ in more than the LXC.
	if _, _, err := Candidates(context.Background(), f, f.Cells[1], f.Cells[0]); err == nil || !strings.Contains(err.Error(), "must be an ancestor") {
		t.Errorf("reversed: %v", err)
	}
	f2 := bisectMatrix(t, src, commits[1][:7], commits[5][:7], "")
	f2.Cells[1].Spec.CPUs = 4
	if _, _, err := Candidates(context.Background(), f2, f2.Cells[0], f2.Cells[1]); err == nil || !strings.Contains(err.Error(), "differ in more than the lxc") {
		t.Errorf("more than the LXC: %v", err)
	}
	d, _ := Load("")
	var cells []Cell
	for _, n := range []string{"k5-10-lxc4-0-6", "k7-3-lxc4-0-6", "bookworm"} {
		c, _ := d.Select([]string{n})
		cells = append(cells, c...)
	}
	axis, probes, err = Candidates(context.Background(), d, cells[0], cells[1])
	var whats []string
	for _, p := range probes {
		whats = append(whats, p.What+"="+p.Cell.Name)
	}
	if err != nil || axis != "kernel" || strings.Join(whats, ",") != "kernel 6.1=k6-1-lxc4-0-6,kernel 6.12=k6-12-lxc4-0-6,kernel 7.2=k7-2-lxc4-0-6,kernel 7.3=k7-3-lxc4-0-6" {
		t.Errorf("kernel axis: %q %v %v", axis, whats, err)
	}
	if _, _, err := Candidates(context.Background(), d, cells[0], cells[2]); err == nil || !strings.Contains(err.Error(), "do not differ on one axis labctl bisects") {
		t.Errorf("a grid cell and a named one: %v", err)
	}
}

// TestRunBisect bisects a planted regression with stand-ins for the LXC build and the suite:
// commit c3 breaks the nested level, c1 does not build; the steps, the first bad commit and
// why it failed are printed and written to bisect.json.
func TestRunBisect(t *testing.T) {
	src, commits := gitHistory(t, 8)
	f := bisectMatrix(t, src, commits[0][:7], commits[7][:7], "")
	fail := map[string]bool{"bad": true}
	for _, c := range commits[3:] {
		fail["bisect-"+c[:12]] = true
	}
	out := t.TempDir()
	var progress bytes.Buffer
	built := 0
	bi, err := RunBisect(context.Background(), f, f.Cells[0], f.Cells[1], BisectOptions{
		Out: out, Runner: &fakeSuite{fail: fail}, Progress: &progress,
		Build: func(_ context.Context, s *spec.Spec, log io.Writer) error {
			built++
			if s.LXC.Ref == commits[1][:12] {
				return errors.New("meson: compile error in src/lxc/start.c\nmore")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if bi.FirstBad != commits[3][:12]+" c3" || !strings.Contains(bi.Why, "failed: level:nested spec") {
		t.Errorf("first bad %q why %q, want c3 with the failed spec\n%s", bi.FirstBad, bi.Why, progress.String())
	}
	var verdicts []string
	for _, s := range bi.Steps {
		verdicts = append(verdicts, strings.Fields(s.What)[1]+"="+string(s.Verdict))
		if _, err := os.Stat(filepath.Join(s.Dir, "run.log")); err != nil {
			t.Errorf("step %d has no log: %v", s.Index, err)
		}
	}
	// 7 candidates (c1..c7): c3 bad, c1 skipped (does not build), c2 good: c3 is the first bad.
	if got := strings.Join(verdicts, " "); got != "c3=bad c1=skip c2=good" {
		t.Errorf("steps: %s", got)
	}
	if built != len(bi.Steps) {
		t.Errorf("%d builds for %d steps", built, len(bi.Steps))
	}
	for _, want := range []string{"bisect: lxc axis, 7 candidates after good up to bad", "bisect step 1: ", "skip in 0s: does not build: meson: compile error in src/lxc/start.c", "bisect: first bad: " + commits[3][:12] + " c3"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	data, _ := os.ReadFile(filepath.Join(out, "bisect", "bisect.json"))
	var saved Bisection
	if err := json.Unmarshal(data, &saved); err != nil || saved.FirstBad != bi.FirstBad || len(saved.Candidates) != 7 {
		t.Errorf("bisect.json: %v %+v", err, saved)
	}
}
