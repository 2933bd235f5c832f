package matrix

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/golden"
)

// TestExplainRealRedCells reads the logs of two red cells of a real grid run (excerpts kept in
// testdata/why/): the first says AppArmor denied LXC 4.0.6's lxc-start a user namespace on
// kernel 6.12, the second that kernel 5.10 cannot write a btrfs made by a newer mkfs.btrfs.
func TestExplainRealRedCells(t *testing.T) {
	for _, tc := range []struct {
		cell string
		want []string // each Why's Says prefix, in order, then its Found prefix
	}{
		{"k6-12-lxc4-0-6", []string{
			"AppArmor denied creating a user namespace to the profile /usr/bin/lxc-start", "evidence/box1-lxc-start.log:",
		}},
		{"k5-10-lxc4-0-6", []string{
			"the kernel cannot mount the btrfs data disk read-write: mkfs.btrfs gave it optional features (0x8)", "evidence/console.log:6: [   82.575880] BTRFS error",
		}},
	} {
		t.Run(tc.cell, func(t *testing.T) {
			whys := explain(filepath.Join("testdata", "why", tc.cell))
			if len(whys) == 0 {
				t.Fatal("no explanation")
			}
			if !strings.HasPrefix(whys[0].Says, tc.want[0]) {
				t.Errorf("first why = %q, want it to start %q", whys[0].Says, tc.want[0])
			}
			if tc.cell == "k6-12-lxc4-0-6" {
				// The lxc-start log (sorted first) shows the refused unshare; the console's
				// denial names the profile: both are there, the denial first in the list of
				// signatures, each once.
				var says []string
				for _, w := range whys {
					says = append(says, w.Says)
				}
				all := strings.Join(says, "\n")
				if !strings.Contains(all, "refused LXC a new user namespace") || strings.Count(all, "AppArmor denied creating") != 1 {
					t.Errorf("whys = %q", says)
				}
				for _, w := range whys {
					if strings.HasPrefix(w.Says, "AppArmor denied creating") && !strings.HasPrefix(w.Found, "evidence/console.log:") {
						t.Errorf("the denial found at %q, want console.log", w.Found)
					}
				}
				return
			}
			if !strings.HasPrefix(whys[0].Found, tc.want[1]) {
				t.Errorf("found = %q, want %q...", whys[0].Found, tc.want[1])
			}
		})
	}
	// A cell whose logs show nothing known has no explanation (the summary says so).
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "run.log"), []byte("labctl up: step \"x\" failed: exit 3\n"), 0o644)
	if whys := explain(dir); len(whys) != 0 {
		t.Errorf("explained the unknown: %v", whys)
	}
}

// TestSignaturesExplainTheirLines: every known failure has a line it explains, and the
// explanation uses what the line names.
func TestSignaturesExplainTheirLines(t *testing.T) {
	lines := []string{
		`audit: type=1400 apparmor="DENIED" operation="userns_create" class="namespace" profile="/usr/bin/lxc-start" pid=1`,
		`audit: type=1400 apparmor="DENIED" operation="mount" class="mount" info="failed flags match" profile="lxc-container-default" name="/sys/"`,
		`BTRFS error (device sda): cannot mount read-write because of unsupported optional features (0x8)`,
		`lxc-start box1 ERROR cgfsng - Failed to mount cgroups - unsupported cgroup layout`,
		`newuidmap: uid range [0-65536) -> [100000-165536) not allowed`,
		`lxc-start box1 20261204004850.607 ERROR    start - ../src/lxc/start.c:lxc_spawn:1832 - Permission denied - Failed to preserve net namespace`,
		`conf.c:userns_exec_mapped_root:4584 - Permission denied - Failed to unshare new user namespace`,
		`sh: lxc-create: not found`,
		`[   3.1] Kernel panic - not syncing: VFS: Unable to mount root fs`,
		`tar: ./x: Cannot write: No space left on device`,
		`Timed out while waiting for the machine to boot. This means that`,
	}
	if len(lines) != len(signatures) {
		t.Fatalf("%d lines for %d signatures: give every signature its line", len(lines), len(signatures))
	}
	for i, line := range lines {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "run.log"), []byte("first\n"+line+"\n"), 0o644)
		whys := explain(dir)
		if len(whys) != 1 {
			t.Errorf("line %d: %d whys: %v", i, len(whys), whys)
			continue
		}
		want := strings.SplitN(signatures[i].says, "%", 2)[0]
		if !strings.HasPrefix(whys[0].Says, want) || strings.Contains(whys[0].Says, "%!") {
			t.Errorf("line %d explained as %q, want signature %d (%q...)", i, whys[0].Says, i, want)
		}
		if !strings.HasPrefix(whys[0].Found, "run.log:2: ") {
			t.Errorf("line %d found at %q", i, whys[0].Found)
		}
	}
}

// TestKeepEvidence: a failed cell keeps the logs its lab wrote during the run (their tails), not
// older ones, not symlinks.
func TestKeepEvidence(t *testing.T) {
	root, cell := t.TempDir(), t.TempDir()
	logs := filepath.Join(root, "tmp", "c1", "logs")
	os.MkdirAll(logs, 0o755)
	old := filepath.Join(logs, "old.log")
	os.WriteFile(old, []byte("an earlier run\n"), 0o644)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	start := time.Now().Add(-time.Minute)
	big := bytes.Repeat([]byte("x"), evidenceMax+10)
	copy(big[len(big)-4:], "tail")
	os.WriteFile(filepath.Join(logs, "console.log"), big, 0o644)
	os.WriteFile(filepath.Join(logs, "box1-lxc-start.log"), []byte("ERROR start\n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(logs, "planted.log"))
	if err := keepEvidence(root, "c1", cell, start); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(cell, EvidenceDir, "*"))
	var names []string
	for _, g := range got {
		names = append(names, filepath.Base(g))
	}
	if strings.Join(names, ",") != "box1-lxc-start.log,console.log" {
		t.Errorf("kept %v, want box1-lxc-start.log and console.log", names)
	}
	data, _ := os.ReadFile(filepath.Join(cell, EvidenceDir, "console.log"))
	if len(data) != evidenceMax || !bytes.HasSuffix(data, []byte("tail")) {
		t.Errorf("console.log kept %d bytes (want its last %d)", len(data), evidenceMax)
	}
	// A lab that wrote no logs leaves no evidence directory.
	if err := keepEvidence(root, "nosuch", filepath.Join(cell, "x"), start); err != nil {
		t.Fatal(err)
	}
}

// TestDiffersNamesTheFacts: two cells' facts that differ are listed, the same ones are not.
func TestDiffersNamesTheFacts(t *testing.T) {
	a := Result{Userland: "forky", AxisKernel: "6.12", AxisLXC: "4.0.6", Kernel: "6.12.1", LXC: "4.0.6",
		Facts: map[string]string{"systemd": "262", "apparmor.parser": "4.1.0", "config.USER_NS": "y", "kernel": "6.12.1"}}
	b := Result{Userland: "forky", AxisKernel: "6.12", AxisLXC: "6.0.4", Kernel: "6.12.1", LXC: "6.0.4",
		Facts: map[string]string{"systemd": "262", "apparmor.parser": "4.1.2", "config.USER_NS": "y", "kernel": "6.12.1", "only.b": "x"}}
	if got := strings.Join(differs(a, b), "; "); got != "LXC 4.0.6 → 6.0.4; apparmor.parser 4.1.0 → 4.1.2" {
		t.Errorf("differs = %q", got)
	}
}

// TestWhySection: the summary explains each failed cell with its logs, its nearest passing
// cells on the grid and what differs, and lists its evidence (golden).
// whyFixture is a matrix output under out with two real red cells (their evidence from
// testdata/why/) and passing cells around them, and its report.
func whyFixture(t *testing.T, out string) Report {
	t.Helper()
	for _, c := range []string{"k6-12-lxc4-0-6", "k5-10-lxc4-0-6"} {
		ev := filepath.Join(out, "cells", c, EvidenceDir)
		os.MkdirAll(ev, 0o755)
		src, _ := filepath.Glob(filepath.Join("testdata", "why", c, EvidenceDir, "*"))
		for _, s := range src {
			data, _ := os.ReadFile(s)
			os.WriteFile(filepath.Join(ev, filepath.Base(s)), data, 0o644)
		}
	}
	cell := func(name, k, l, status, kernel, lxc string) Result {
		r := Result{Cell: name, Userland: "forky", AxisKernel: k, AxisLXC: l, Cgroup: "v2", Status: status, Kernel: kernel, LXC: lxc}
		if status == Passed {
			r.Levels = map[string]Counts{"host": {Passed: 10}, "unpriv": {Passed: 12}, "nested": {Passed: 5}, "other": {Passed: 4}}
			r.Total = Counts{Passed: 31}
			r.Seconds = 540
		}
		if status == Failed {
			r.Reason = "failed:  [BeforeSuite] (the suite: exit status 1)"
			r.Why = explain(filepath.Join("testdata", "why", name))
			r.Evidence = filepath.Join("cells", name, EvidenceDir)
			r.Step = failedStep(filepath.Join("testdata", "why", name))
		}
		return r
	}
	return Report{Out: out, Made: time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC), Results: []Result{
		cell("k5-10-lxc4-0-6", "5.10", "4.0.6", Failed, "", ""),
		cell("k5-10-lxc7-0-0", "5.10", "7.0.0", Passed, "5.10.0-32-amd64", "7.0.0"),
		cell("k6-12-lxc4-0-6", "6.12", "4.0.6", Failed, "", ""),
		cell("k6-12-lxc6-0-4", "6.12", "6.0.4", Passed, "6.12.117+deb13-amd64", "6.0.4"),
		cell("k7-3-lxc4-0-6", "7.3", "4.0.6", Passed, "7.3.1+deb14-amd64", "4.0.6"),
		{Cell: "k6-1-lxc6-0-4-v1-trixie", Userland: "trixie", AxisKernel: "6.1", AxisLXC: "6.0.4", Cgroup: "v1", Status: Passed},
	}}
}

func TestWhySection(t *testing.T) {
	out := t.TempDir()
	rep := whyFixture(t, out)
	md := rep.whyMarkdown(out)
	golden.Check(t, "why.md.golden", []byte(md))
	for _, want := range []string{
		"passes with the same kernel: k6-12-lxc6-0-4 (LXC 4.0.6 → 6.0.4)\n",
		"passes with the same LXC: k7-3-lxc4-0-6 (kernel 6.12 → 7.3)\n",
		"evidence: cells/k6-12-lxc4-0-6/evidence/box1-lxc-start.log, cells/k6-12-lxc4-0-6/evidence/console.log",
		`**k6-12-lxc4-0-6** (kernel 6.12, LXC 4.0.6, forky, cgroup v2): labctl up failed at its step "start box1"`,
		`**k5-10-lxc4-0-6** (kernel 5.10, LXC 4.0.6, forky, cgroup v2): labctl up failed at its step "mount /mnt"`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the section does not say %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "k6-1-lxc6-0-4-v1-trixie") {
		t.Error("a cgroup-v1 cell is named as nearest to a v2 cell")
	}
	var page bytes.Buffer
	if err := htmlPage.Execute(&page, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<h3 id="why-k6-12-lxc4-0-6">`, `labctl up failed at its step “start box1”`, `<a href="cells/k6-12-lxc4-0-6/evidence/console.log">`, "passes with the same kernel: k6-12-lxc6-0-4"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the HTML page lacks %q", want)
		}
	}
	if (Report{Results: []Result{{Cell: "a", Status: Passed}}}).whyMarkdown(out) != "" {
		t.Error("a matrix without a failed cell has a why section")
	}
}

// TestLockOut: a second verb on the same matrix output is refused, naming the first; once the
// first ends, it may go.
func TestLockOut(t *testing.T) {
	out := t.TempDir()
	lk, err := LockOut(out, "matrix run")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockOut(out, "matrix clean"); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("matrix clean: matrix run (pid %d) works in %s", os.Getpid(), out)) {
		t.Errorf("a second verb: %v", err)
	}
	if _, err := Merge(out, []string{t.TempDir()}, nil, nil, nil, "m"); err == nil || !strings.Contains(err.Error(), "matrix merge: matrix run") {
		t.Errorf("merge during a run: %v", err)
	}
	lk.Unlock()
	lk2, err := LockOut(out, "matrix clean")
	if err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	lk2.Unlock()
}
