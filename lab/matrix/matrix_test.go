package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// fakeHost has every tool of a libvirt host, root, and no Vagrant box.
type fakeHost struct{ lacks map[string]bool }

func (h fakeHost) Has(tool string) bool { return !h.lacks[tool] }
func (fakeHost) BuildsBoxes() error     { return nil }
func (fakeHost) Boxes() map[string]bool { return nil }
func libvirtHost() fakeHost             { return fakeHost{lacks: map[string]bool{"VBoxManage": true}} }

var sixCells = []string{"bullseye", "bookworm", "bookworm-bpo", "trixie", "trixie-bpo", "forky"}

func TestDefaultMatrix(t *testing.T) {
	f, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	var runs, skips, grid, excluded []string
	for _, c := range f.Cells {
		if c.Excluded != "" {
			excluded = append(excluded, c.Name)
			continue
		}
		if c.Spec.Name != c.Name {
			t.Errorf("cell %s runs lab %s: a cell's lab is named after it", c.Name, c.Spec.Name)
		}
		if n := NeedsOf(c, libvirtHost()); n.Runnable && c.Point != nil {
			grid = append(grid, c.Name)
		} else if n.Runnable {
			runs = append(runs, c.Name)
		} else {
			skips = append(skips, c.Name)
			if !strings.Contains(n.Reason, "VirtualBox") {
				t.Errorf("%s is skipped for %q, want the missing VirtualBox named", c.Name, n.Reason)
			}
		}
	}
	if strings.Join(runs, ",") != strings.Join(sixCells, ",") {
		t.Errorf("runnable here: %v, want %v", runs, sixCells)
	}
	if strings.Join(skips, ",") != "trusty,xenial,bionic,focal,jammy,noble" {
		t.Errorf("legacy cells: %v", skips)
	}
	// The grid: 5 kernels × 4 LXC on forky (but forky's own pair: the forky cell), then the
	// cgroup-v1 cells that exist; the one that cannot (LXC 7.0 on v1) listed as excluded.
	if len(grid) != 22 || grid[0] != "k5-10-lxc4-0-6" || grid[18] != "k7-3-lxc7-0-0" || grid[21] != "k6-1-lxc6-0-4-v1-trixie" {
		t.Errorf("grid cells: %v", grid)
	}
	if strings.Join(excluded, ",") != "k7-2-lxc7-0-0,k6-1-lxc7-0-0-v1-bookworm" {
		t.Errorf("excluded: %v", excluded)
	}
	k := f.Cells[f.Index("k5-10-lxc7-0-0")].Spec
	if k.Box.Release != "forky" || k.Box.Kernel != "bullseye" || k.LXC.Suite != "" || k.Kernel != "~> 5.10.0" || k.LXC.Expect != "~> 7.0.0" {
		t.Errorf("k5-10-lxc7-0-0: box %+v, kernel %q, lxc %+v", k.Box, k.Kernel, k.LXC)
	}
	l := f.Cells[f.Index("k7-3-lxc4-0-6")].Spec
	if l.Box.Kernel != "trixie-backports" || l.LXC.Suite != "bullseye" || l.LXC.Version != "4.0.6" || l.BoxName() != "labctl/forky-k-trixie-backports-lxc-bullseye" {
		t.Errorf("k7-3-lxc4-0-6: box %+v, lxc %+v", l.Box, l.LXC)
	}
	bpo := f.Cells[f.Index("bookworm-bpo")].Spec
	if bpo.Box.Kernel != "bookworm-backports" || bpo.Kernel != "~> 6.12.0" || bpo.LXC.Expect != "~> 5.0.0" || bpo.BoxName() != "labctl/bookworm-backports" {
		t.Errorf("bookworm-bpo: box %+v kernel %q lxc %q", bpo.Box, bpo.Kernel, bpo.LXC.Expect)
	}
	// Lists of named maps merge by name: xenial changes box1's image, n1 stays.
	x := f.Cells[f.Index("xenial")].Spec
	if len(x.Containers) != 2 || x.Containers[0].Image.Release != "xenial" || x.Containers[0].Image.Dist != "ubuntu" || x.Containers[1].Name != "n1" || x.LXC.Suite != "" {
		t.Errorf("xenial: containers %+v, lxc %+v", x.Containers, x.LXC)
	}
}

func TestBadMatrixNamesEveryBadCell(t *testing.T) {
	_, err := Parse([]byte(`cells:
  - {name: Bad_Name, preset: bookworm}
  - {name: a, preset: bookworm}
  - {name: a, preset: bookworm}
  - {name: b, preset: nosuch}
  - {name: c, preset: bookworm, lab: {cpu: 2}}
  - {name: d, preset: bookworm, lab: {box: {kernel: bullseye-backports}}}
  - {name: e, preset: bookworm, lab: {containers: [{name: n9, remove: true}]}}
  - {name: g, preset: bookworm, lab: {containers: [{name: n1, remove: true, nesting: true}]}}
  - {name: h, preset: bookworm, lab: {containers: [{name: box1, remove: true}]}}
`), "m.yaml")
	if err == nil {
		t.Fatal("a bad matrix was accepted")
	}
	for _, want := range []string{
		`cells[0] (Bad_Name): name "Bad_Name" is not a valid cell name`,
		`cells[2] (a): name "a" is used twice`,
		`cells[3] (b): preset: preset "nosuch" does not exist`,
		`cells[4] (c): lab (preset bookworm with the cell's overrides)`, "field cpu not found",
		`cells[5] (d)`, `box.kernel: "bullseye-backports" is not a suite`, "use one of bullseye, bookworm, bookworm-backports",
		`cells[6] (e)`, "containers: item n9: remove: the preset has no item named n9",
		`cells[7] (g)`, "containers: item n1: remove takes true and only a name beside it",
		`cells[8] (h)`, `containers[0].parent: "box1" is not a container listed before this one`, // n1 without its parent: the lab's own validation
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("cells: []\n"), "m.yaml"); err == nil || !strings.Contains(err.Error(), "no cells") {
		t.Errorf("empty matrix: %v", err)
	}
	f, _ := Load("")
	if _, err := f.Select([]string{"forky", "sid"}); err == nil || !strings.Contains(err.Error(), "no cell sid") || !strings.Contains(err.Error(), "bookworm-bpo") {
		t.Errorf("unknown cell: %v", err)
	}
}

// TestCellRemovesAPresetContainer: a cell's overrides take a preset's container out with
// {name: NAME, remove: true} and keep the others, merged by name.
func TestCellRemovesAPresetContainer(t *testing.T) {
	f, err := Parse([]byte(`cells:
  - name: one
    preset: bullseye
    lab:
      containers:
        - {name: n1, remove: true}
        - {name: box1, nesting: false}
`), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cs := f.Cells[0].Spec.Containers
	if len(cs) != 1 || cs[0].Name != "box1" || cs[0].Nesting || !cs[0].Unprivileged {
		t.Errorf("containers = %+v, want box1 alone, unprivileged, not nesting", cs)
	}
}

// fakeSuite stands in for the VM run: it writes the Ginkgo reports a suite of 2 specs per
// level would, failing the nested level's second spec in the cells named in fail.
type fakeSuite struct {
	fail       map[string]bool
	running    atomic.Int32
	mostAtOnce atomic.Int32
	delay      time.Duration
}

func (s *fakeSuite) Run(ctx context.Context, c Cell, dir string, log io.Writer) error {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		m := s.mostAtOnce.Load()
		if n <= m || s.mostAtOnce.CompareAndSwap(m, n) {
			break
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.yaml")); err != nil {
		return err
	}
	io.WriteString(log, "==> labctl up "+c.Name+"\nrunning specs\n")
	time.Sleep(s.delay)
	r := types.Report{SuiteDescription: "labctl e2e", SuiteSucceeded: !s.fail[c.Name], RunTime: 42 * time.Second}
	r.SpecReports = append(r.SpecReports, types.SpecReport{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed,
		ReportEntries: types.ReportEntries{
			{Name: EntryUp, Value: types.WrapEntryValue("2m20s")},
			{Name: EntryKernel, Value: types.WrapEntryValue(c.Spec.Kernel[3:] + "-1-amd64")},
			{Name: EntryLXC, Value: types.WrapEntryValue(strings.TrimPrefix(c.Spec.LXC.Expect, "~> "))},
			{Name: EntryFacts, Value: types.WrapEntryValue(`{"systemd":"262","syscall.pidfd_open":"yes"}`)},
		}})
	for _, lv := range []string{"level:host", "level:unpriv", "level:nested", "reboot"} {
		for i := 0; i < 2; i++ {
			st := types.SpecStatePassed
			if lv == "level:nested" && i == 1 && s.fail[c.Name] {
				st = types.SpecStateFailed
			}
			r.SpecReports = append(r.SpecReports, types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: lv + " spec", LeafNodeLabels: []string{lv}, State: st, RunTime: time.Second})
		}
	}
	if err := reporters.GenerateJSONReport(r, filepath.Join(dir, "report.json")); err != nil {
		return err
	}
	if err := reporters.GenerateJUnitReport(r, filepath.Join(dir, "junit.xml")); err != nil {
		return err
	}
	if s.fail[c.Name] {
		// As Suite.Run keeps a failed lab's logs: a console line of a known failure.
		os.MkdirAll(filepath.Join(dir, EvidenceDir), 0o755)
		os.WriteFile(filepath.Join(dir, EvidenceDir, "console.log"), []byte("[ 1.0] Kernel panic - not syncing: fake\n"), 0o644)
		return io.ErrUnexpectedEOF // the suite exits non-zero
	}
	return nil
}

// TestPlanRunMerge goes the way a CI job matrix does: plan the runnable cells, run each in a
// job of its own (its own output directory), merge the jobs' outputs, report.
func TestPlanRunMerge(t *testing.T) {
	f, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	h := libvirtHost()
	var named []Cell // the grid's cells have a test of their own
	for _, c := range f.Cells {
		if c.Point == nil {
			named = append(named, c)
		}
	}
	plan, err := Plan(named, h, "github")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Include []struct{ Cell, Preset, Box string } `json:"include"`
	}
	if err := json.Unmarshal(plan, &m); err != nil || len(m.Include) != 6 || m.Include[2].Cell != "bookworm-bpo" || m.Include[2].Box != "labctl/bookworm-backports" {
		t.Fatalf("github plan %s: %+v %v", plan, m, err)
	}
	gl, err := Plan(named, h, "gitlab")
	if err != nil || !strings.HasPrefix(string(gl), "parallel:\n  matrix:\n    - CELL:\n        - bullseye\n") || strings.Count(string(gl), "        - ") != 6 {
		t.Fatalf("gitlab plan:\n%s%v", gl, err)
	}
	if _, err := Plan(named, h, "jenkins"); err == nil || !strings.Contains(err.Error(), "use github") {
		t.Fatalf("unknown format: %v", err)
	}
	suite := &fakeSuite{fail: map[string]bool{"trixie-bpo": true}}
	jobs := t.TempDir()
	var dirs []string
	for _, e := range m.Include {
		cells, err := f.Select([]string{e.Cell})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(jobs, e.Cell, "tmp", "matrix") // the job's artifact
		var progress bytes.Buffer
		rs, err := Run(context.Background(), f, cells, Options{Out: out, Jobs: 1, Runner: suite, Host: h, Progress: &progress, Machine: "job " + e.Cell})
		if err != nil || len(rs) != 1 {
			t.Fatalf("run %s: %v %v", e.Cell, rs, err)
		}
		for _, want := range []string{"cell " + e.Cell + ": running (lab " + e.Cell, "cell " + e.Cell + ": " + rs[0].Status + " in "} {
			if !strings.Contains(progress.String(), want) {
				t.Errorf("progress of %s lacks %q:\n%s", e.Cell, want, progress.String())
			}
		}
		dirs = append(dirs, filepath.Join(jobs, e.Cell))
	}
	out := filepath.Join(t.TempDir(), "matrix")
	merged, err := Merge(out, dirs, f, named, h, "merger")
	if err != nil || len(merged) != 6 {
		t.Fatalf("merge: %v %v", merged, err)
	}
	rep, err := WriteReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if p, fl, s, x := rep.Count(); p != 5 || fl != 1 || s != 6 || x != 0 {
		t.Errorf("cells passed/failed/skipped %d/%d/%d, want 5/1/6", p, fl, s)
	}
	if got := rep.Failed(); len(got) != 1 || got[0] != "trixie-bpo" {
		t.Errorf("failed cells %v", got)
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	for _, want := range []string{
		"| bookworm-bpo | labctl/bookworm-backports (bookworm-backports) | ~> 6.12.0 / 6.12.0-1-amd64 | ~> 5.0.0 / 5.0.0 | 2/2 | 2/2 | 2/2 | 2/2 | passed |",
		"| trixie-bpo | labctl/trixie-backports (trixie-backports) | ~> 7.3.0 / 7.3.0-1-amd64 | ~> 6.0.0 / 6.0.0 | 2/2 | 2/2 | 1/2 (1 failed) | 2/2 | failed: level:nested spec",
		"| xenial | ubuntu/xenial64 (-) | ~> 4.4.0 / - | ~> 2.0.0 / - | - | - | - | - | skipped: this host lacks VirtualBox (VBoxManage not found)",
		"12 cells: 5 passed, 1 failed, 6 skipped", "machine: job bullseye; job bookworm;",
		// The failed cell's evidence came along with the merge, and explains it.
		"- **trixie-bpo**", "the VM's kernel panicked: fake (console.log has the trace). Seen in `evidence/console.log:1:",
		"evidence: cells/trixie-bpo/evidence/console.log",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	if html, _ := os.ReadFile(filepath.Join(out, "summary.html")); !strings.Contains(string(html), `<tr class="failed"><td>trixie-bpo</td>`) {
		t.Errorf("summary.html has no failed row for trixie-bpo:\n%s", html)
	}
	var j reporters.JUnitTestSuites
	data, _ := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	// 6 cells x 9 cases (8 specs + the BeforeSuite node Ginkgo reports), 6 skipped cells x 1.
	if len(j.TestSuites) != 12 || j.Failures != 1 || j.Tests != 6*9+6 {
		t.Errorf("merged junit: %d suites, %d tests, %d failures", len(j.TestSuites), j.Tests, j.Failures)
	}
	if j.TestSuites[6].Name != "trusty: trusty" || j.TestSuites[6].TestCases[0].Skipped == nil || !strings.Contains(j.TestSuites[6].TestCases[0].Skipped.Message, "VirtualBox") {
		t.Errorf("a skipped cell in the merged junit: %+v", j.TestSuites[6])
	}
	// A merge that misses a runnable cell fails it, and a second result of a cell is refused.
	if _, err := Merge(out, dirs[:5], f, named, h, "merger"); err != nil {
		t.Fatal(err)
	}
	rs, _ := ReadResults(out)
	if f := rs[0].Facts; f["systemd"] != "262" || f["syscall.pidfd_open"] != "yes" {
		t.Errorf("the cell's facts were not read from its report: %v", f)
	}
	if r := rs[5]; r.Cell != "forky" || r.Status != Failed || !strings.Contains(r.Reason, "no result") {
		t.Errorf("a cell without a result: %+v", r)
	}
	if _, err := Merge(out, []string{dirs[0], dirs[0]}, f, f.Cells, h, "merger"); err == nil || !strings.Contains(err.Error(), "two results") {
		t.Errorf("a cell twice: %v", err)
	}
}

// TestJobsRunAtOnce: --jobs 2 runs two cells at a time, never more.
func TestJobsRunAtOnce(t *testing.T) {
	f, _ := Load("")
	cells, _ := f.Select(sixCells[:4])
	suite := &fakeSuite{delay: 150 * time.Millisecond}
	var progress syncBuffer
	rs, err := Run(context.Background(), f, cells, Options{Out: t.TempDir(), Jobs: 2, Runner: suite, Host: libvirtHost(), Progress: &progress, Every: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// A second run replaces the first one's results: its report holds only its own cells.
	out := t.TempDir()
	if _, err := Run(context.Background(), f, cells, Options{Out: out, Runner: suite, Host: libvirtHost(), Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), f, cells[:1], Options{Out: out, Runner: suite, Host: libvirtHost(), Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if rs, err := ReadResults(out); err != nil || len(rs) != 1 || rs[0].Cell != cells[0].Name {
		t.Errorf("after a run of one cell the results are %v (%v)", rs, err)
	}
	if got := suite.mostAtOnce.Load(); got != 2 {
		t.Errorf("%d cells ran at once with --jobs 2", got)
	}
	for _, r := range rs {
		if r.Status != Passed || r.Total.Passed != 8 {
			t.Errorf("%s: %s %+v", r.Cell, r.Status, r.Total)
		}
	}
	if !strings.Contains(progress.String(), "last: running specs") {
		t.Errorf("no progress while cells ran:\n%s", progress.String())
	}
}

// A suite that writes no report fails its cell with the reason; the matrix goes on.
func TestCellWithoutReportFails(t *testing.T) {
	f, _ := Load("")
	cells, _ := f.Select([]string{"bookworm", "forky"})
	rs, err := Run(context.Background(), f, cells, Options{Out: t.TempDir(), Runner: brokenSuite{}, Host: libvirtHost(), Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status != Failed || !strings.Contains(r.Reason, "the suite wrote no report") || !strings.Contains(r.Reason, "exit status 3") {
			t.Errorf("%s: %s %q", r.Cell, r.Status, r.Reason)
		}
	}
}

type brokenSuite struct{}

func (brokenSuite) Run(context.Context, Cell, string, io.Writer) error {
	return &exitErr{}
}

type exitErr struct{}

func (*exitErr) Error() string { return "exit status 3" }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestSuiteLeavesNoLab: when the suite dies before its own cleanup, the real runner destroys
// the cell's lab (with the labctl it was given), unless --keep; a passing suite is left alone.
func TestSuiteLeavesNoLab(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "labctl-calls")
	labctl := filepath.Join(dir, "labctl")
	f, _ := Load("")
	cells, _ := f.Select([]string{"forky"})
	lab := filepath.Join(dir, "cell", "lab.yaml")
	test := "test --up -v --timeout 80m --json " + filepath.Join(dir, "cell", "report.json") + " --junit " + filepath.Join(dir, "cell", "junit.xml") + " -f " + lab
	for _, c := range []struct {
		suite            string
		keep, keepFailed bool
		want             string
	}{
		{"exit 1", false, false, test + "\ndestroy -f " + lab + "\n"},
		{"exit 1", true, false, test + " --keep\n"},
		{"exit 0", false, false, test + "\n"},
		// --keep-failed: the suite keeps a failed lab itself, and the matrix does not destroy it.
		{"exit 1", false, true, test + " --keep-failed\n"},
		{"exit 0", false, true, test + " --keep-failed\n"},
	} {
		os.Remove(calls)
		// labctl stands in: `test` ends as the case says, every call recorded.
		os.WriteFile(labctl, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n[ \"$1\" = test ] && "+c.suite+"\nexit 0\n"), 0o755)
		os.MkdirAll(filepath.Join(dir, "cell"), 0o755)
		var log bytes.Buffer
		err := Suite{Dir: dir, Labctl: labctl, Keep: c.keep, KeepFailed: c.keepFailed}.Run(context.Background(), cells[0], filepath.Join(dir, "cell"), &log)
		if (err != nil) != (c.suite != "exit 0") {
			t.Errorf("%s: %v", c.suite, err)
		}
		got, _ := os.ReadFile(calls)
		if string(got) != c.want {
			t.Errorf("suite %q keep %v: labctl was called with %q, want %q\n%s", c.suite, c.keep, got, c.want, log.String())
		}
	}
}
