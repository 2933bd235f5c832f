package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/matrix"
)

// standInSuite takes labctl's place in `matrix run --suite`: its `test` verb checks that it got
// the cell's lab.yaml and writes the reports a passing suite of one spec per level would, with
// the guest's kernel and LXC as the real suite records them.
const standInSuite = `#!/bin/sh
set -e
[ "$1" = test ] || { echo "stand-in: only test, not $*" >&2; exit 2; }
prev=""
for a in "$@"; do
  case "$prev" in
    --json) json=$a ;;
    --junit) junit=$a ;;
    -f) lab=$a ;;
  esac
  prev=$a
done
grep -q '^name: ' "$lab"
echo "==> bringing up $(sed -n 's/^name: //p' "$lab")"
spec() { printf '{"LeafNodeType":"It","LeafNodeText":"%s","LeafNodeLabels":["%s"],"State":"passed"}' "$1" "$2"; }
entry() { printf '{"Name":"%s","Value":{"Representation":"%s","AsJSON":"\\"%s\\""}}' "$1" "$2" "$2"; }
printf '[{"SuiteDescription":"labctl e2e","SuiteSucceeded":true,"RunTime":3000000000,"SpecReports":[{"LeafNodeType":"BeforeSuite","State":"passed","ReportEntries":[%s,%s]},%s,%s,%s]}]' \
  "$(entry 'guest kernel' 7.2.12+deb14-amd64)" "$(entry 'guest LXC' 7.0.0)" \
  "$(spec 'the VM runs' level:host)" "$(spec 'box1 runs' level:unpriv)" "$(spec 'n1 runs' level:nested)" > "$json"
printf '<?xml version="1.0"?><testsuites tests="3"><testsuite name="labctl e2e" tests="3"><testcase name="the VM runs"/><testcase name="box1 runs"/><testcase name="n1 runs"/></testsuite></testsuites>' > "$junit"
`

// TestMatrixPlanRunMerge goes the CI way through the CLI: plan, a run per cell into a job's
// own directory (the suite stood in for), merge, report.
func TestMatrixPlanRunMerge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP reason: the matrix runs cells only where it can build boxes (root)")
	}
	root := t.TempDir()
	out, errOut, code := run(t, root, "matrix", "plan", "--format", "github", "--cells", "bookworm,forky,trusty")
	if code != 0 {
		if strings.Contains(errOut, "no cell runs on this host") {
			t.Skip("SKIP reason: this host runs no cell (`make deps` installs what they need)")
		}
		t.Fatalf("plan: %d %s", code, errOut)
	}
	var plan struct {
		Include []struct{ Cell string } `json:"include"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan.Include) != 2 || plan.Include[1].Cell != "forky" {
		t.Fatalf("plan (trusty needs VirtualBox): %s %v", out, err)
	}
	suite := filepath.Join(root, "suite.sh")
	if err := os.WriteFile(suite, []byte(standInSuite), 0o755); err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, e := range plan.Include {
		job := filepath.Join(root, "job-"+e.Cell)
		if err := os.MkdirAll(filepath.Join(job, "e2e"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := run(t, job, "matrix", "run", "--cells", e.Cell, "--suite", suite)
		if code != 0 || !strings.Contains(out, "cell "+e.Cell+": passed in") || !strings.Contains(out, "kernel 7.2.12+deb14-amd64, LXC 7.0.0") {
			t.Fatalf("run %s: %d\n%s\n%s", e.Cell, code, out, errOut)
		}
		jobs = append(jobs, filepath.Join(job, "tmp", "matrix"))
	}
	merger := filepath.Join(root, "merger")
	os.MkdirAll(merger, 0o755)
	out, errOut, code = run(t, merger, append([]string{"matrix", "merge", "--cells", "bookworm,forky,trusty"}, jobs...)...)
	if code != 0 {
		t.Fatalf("merge: %d\n%s\n%s", code, out, errOut)
	}
	md, err := os.ReadFile(filepath.Join(merger, "tmp", "matrix", "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"merged 2 cell results: bookworm, forky",
		"| forky | labctl/forky (forky) | ~> 7.2.0 / 7.2.12+deb14-amd64 | ~> 7.0.0 / 7.0.0 | 1/1 | 1/1 | 1/1 | - | passed |",
		"| trusty | trusty (-) |", "skipped: this host lacks VirtualBox",
		"3 cells: 2 passed, 0 failed, 1 skipped",
	} {
		if !strings.Contains(out+string(md), want) {
			t.Errorf("merge output and summary lack %q:\n%s\n%s", want, out, md)
		}
	}
	for _, f := range []string{"summary.html", "junit.xml", "cells/forky/run.log", "cells/forky/lab.yaml"} {
		if _, err := os.Stat(filepath.Join(merger, "tmp", "matrix", f)); err != nil {
			t.Errorf("merge left no %s: %v", f, err)
		}
	}
}

func TestMatrixBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"matrix", "list", "--preset", "bookworm"}, 2, "--preset is not a matrix"},
		{[]string{"matrix", "list", "--cells", "forky,sid"}, 1, "no cell sid in the matrix: use some of bullseye, bookworm"},
		{[]string{"matrix", "plan", "--format", "jenkins"}, 1, `--format "jenkins" is not one labctl prints`},
		{[]string{"matrix", "run", "--cells", "forky", "--jobs", "100000"}, 1, "--jobs 100000: only"},
		{[]string{"matrix", "list", "-f", "nosuch.yaml"}, 1, "read the matrix file"},
		{[]string{"matrix", "report"}, 1, "no cell results under tmp/matrix/cells"},
		{[]string{"matrix", "merge", "nosuch"}, 1, "merge: stat nosuch"},
		{[]string{"matrix", "attach", "../../etc"}, 1, `"../../etc" is not a cell name`},
		{[]string{"matrix", "attach", "forky"}, 1, "no cell forky under tmp/matrix/cells: run it here first (labctl matrix run --cells forky --keep-failed"},
		{[]string{"matrix", "run", "--cells", "forky", "--keep", "--keep-failed"}, 1, "if any flags in the group [keep keep-failed] are set none of the others can be"},
		{[]string{"test", "--keep-failed"}, 2, "--keep and --keep-failed go with --up"},
		{[]string{"test", "--up", "--keep", "--keep-failed"}, 2, "give one"},
		{[]string{"matrix", "bisect", "--good", "bookworm"}, 2, "bisect needs --good CELL (a cell that passes) and --bad CELL"},
		{[]string{"matrix", "bisect", "--good", "nosuch", "--bad", "forky"}, 1, "--good: no cell nosuch in the matrix"},
		{[]string{"matrix", "bisect", "--good", "bookworm", "--bad", "forky"}, 1, "cells bookworm and forky do not differ on one axis labctl bisects"},
		{[]string{"ssh", "--level", "box1", "--", "uname"}, 2, "--level box1 opens a shell there and takes no SSH-ARGS"},
	} {
		_, errOut, code := run(t, dir, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp", "matrix", "cells")); err == nil {
		t.Error("bad input left results behind")
	}
	if out, _, code := run(t, dir, "matrix", "clean"); code != 0 || !strings.Contains(out, "nothing to clean") {
		t.Errorf("clean with no cells: exit %d: %s", code, out)
	}
	// A cell whose lab is gone: clean says so and creates nothing.
	cell := filepath.Join(dir, "tmp", "matrix", "cells", "c1")
	os.MkdirAll(cell, 0o755)
	preset, _, _ := run(t, dir, "presets", "show", "bookworm")
	os.WriteFile(filepath.Join(cell, "lab.yaml"), []byte(strings.Replace(preset, "name: bookworm", "name: c1", 1)), 0o644)
	if out, errOut, code := run(t, dir, "matrix", "clean"); code != 0 || !strings.Contains(out, "lab c1: nothing to destroy") {
		t.Errorf("clean of a gone lab: exit %d: %s%s", code, out, errOut)
	}
	// While a matrix run works there, clean destroys nothing and says why.
	lk, err := matrix.LockOut(filepath.Join(dir, "tmp", "matrix"), "matrix run")
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, dir, "matrix", "clean"); code != 1 || !strings.Contains(errOut, "matrix clean: matrix run (pid") {
		t.Errorf("clean during a run: exit %d: %s", code, errOut)
	}
	lk.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "tmp", "c1")); err == nil {
		t.Error("clean made the directory of a lab that was not there")
	}
}

func TestMatrixShowAndList(t *testing.T) {
	dir := t.TempDir()
	out, _, code := run(t, dir, "matrix", "show")
	if code != 0 || !strings.Contains(out, "name: bookworm-bpo") {
		t.Fatalf("show: %d %s", code, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	list, _, code := run(t, dir, "matrix", "list", "-f", "m.yaml")
	if code != 0 || strings.Count(list, "\n") != 37 || !strings.Contains(list, "labctl/trixie-backports") || !strings.Contains(list, "xenial") ||
		!strings.Contains(list, "k7-3-lxc4-0-6               forky     7.3        4.0.6     v2      labctl/forky-k-trixie-backports-lxc-bullseye  yes") ||
		!strings.Contains(list, "excluded: cannot exist: box.cgroup") {
		t.Fatalf("list: %d\n%s", code, list)
	}
}
