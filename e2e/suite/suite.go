// Package suite is labctl's e2e suite: Ginkgo specs that prove each nesting level of a real
// lab, driven by its spec. It ships inside labctl (`labctl test`), and `ginkgo ./e2e` runs
// the same suite from the repository. It is written on e2e/labtest, the package users' own
// specs use.
package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/e2e/labtest"
	"github.com/labctl/labctl/lab/matrix"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// The labels of the nesting levels: `labctl test --label-filter=level:nested`.
const (
	LevelHost   = "level:host"
	LevelUnpriv = "level:unpriv"
	LevelNested = "level:nested"
)

// Slow marks the specs that take seconds to minutes under emulation (a reboot, stopping a
// parent, the user's own containers, the README example): the fast loop leaves them out with
// `labctl test --label-filter='!slow' --reset`.
const Slow = "slow"

// Options say which lab the suite proves and what it does around the specs.
type Options struct {
	// Lab names the lab (File, Preset, Root) and the labctl binary (Labctl) that brings it up,
	// resets and destroys it, and runs its agent; File and Labctl absolute.
	Lab labtest.Options
	// Up brings the lab up before the specs and destroys it after them, unless Keep, or
	// KeepFailed and something failed (labctl up then keeps the VM it created too); Reset
	// brings it back to its ready snapshot first.
	Up, Keep, KeepFailed, Reset bool
	// Source is labctl's source tree, where the README's example (a plain `go test`) runs;
	// "" skips that spec.
	Source string
}

// opts are the suite's options, set by Run before the specs run.
var opts Options

// Run proves the lab: it declares the specs for the lab's spec and runs them with Ginkgo
// (configs: a types.SuiteConfig and a types.ReporterConfig, or none for those of `go test`'s
// flags). It reports whether every spec passed; t gets Fail() otherwise.
func Run(t GinkgoTestingT, o Options, configs ...any) bool {
	opts = o
	opts.Lab.Log = GinkgoWriter
	s, err := opts.Lab.Spec()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot read the lab spec to build the suite: %v\n", err)
		t.Fail()
		return false
	}
	RegisterFailHandler(Fail)
	declare(s)
	return RunSpecs(t, "labctl e2e", configs...)
}

// The lab under test, attached once by the suite.
var (
	theSpec *spec.Spec
	theLab  *labtest.Lab
	vm      remote.Target
	prov    *provision.Provisioner
)

// anyFailed is set when a spec, or bringing the lab up, failed (for KeepFailed).
var anyFailed atomic.Bool

// declare declares the suite for spec s: the lab set up before the specs, the specs, the
// reports after them.
func declare(s *spec.Spec) {
	BeforeSuite(setUp, NodeTimeout(45*time.Minute))
	ReportAfterEach(func(r SpecReport) {
		if r.Failed() {
			anyFailed.Store(true)
		}
	})
	describeLab(s)
	// Reports go to tmp/<lab>/reports/ whichever flags ginkgo was given, and the suite ends
	// with two lines: the guest's facts, and one that counts its specs: "e2e: N passed, M
	// failed, K skipped".
	ReportAfterSuite("reports", func(r Report) {
		if f := factsOf(r); f != "" {
			fmt.Println("e2e facts: " + f)
		}
		fmt.Println(countLine(r))
		dir, err := opts.Lab.ReportDir()
		if err != nil {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return
		}
		_ = reporters.GenerateJUnitReport(r, filepath.Join(dir, "junit.xml"))
		_ = reporters.GenerateJSONReport(r, filepath.Join(dir, "report.json"))
	})
}

// setUp brings the lab up (or back to its ready snapshot) as asked, and attaches to it.
func setUp(ctx SpecContext) {
	o := opts.Lab
	var err error
	theSpec, err = o.Spec()
	Expect(err).NotTo(HaveOccurred())
	if opts.Up {
		if !opts.Keep {
			DeferCleanup(func(ctx SpecContext) {
				if opts.KeepFailed && anyFailed.Load() {
					fmt.Fprintf(GinkgoWriter, "lab %s kept: a spec failed (--keep-failed); look with labctl ssh/exec, remove with labctl destroy\n", theSpec.Name)
					return
				}
				start := time.Now()
				Expect(labtest.Destroy(ctx, o)).To(Succeed())
				fmt.Fprintf(GinkgoWriter, "lab %s destroyed in %s\n", theSpec.Name, time.Since(start).Round(time.Second))
			}, NodeTimeout(10*time.Minute))
		}
		start := time.Now()
		up := labtest.Up
		if opts.KeepFailed {
			up = labtest.UpKeepOnFailure
		}
		err := up(ctx, o)
		if err != nil {
			anyFailed.Store(true)
		}
		Expect(err).To(Succeed(), "labctl up failed: see the report's output and tmp/%s/logs/", theSpec.Name)
		AddReportEntry(matrix.EntryUp, time.Since(start).Round(time.Second).String())
	}
	if opts.Reset {
		start := time.Now()
		Expect(labtest.Reset(ctx, o)).To(Succeed(), "labctl reset failed: see the report's output")
		AddReportEntry("labctl reset", time.Since(start).Round(100*time.Millisecond).String())
	}
	theLab, err = labtest.Attach(ctx, o)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(theLab.Close)
	vm = theLab.VM()
	prov, err = theLab.Provisioner(ctx, provision.Options{Out: GinkgoWriter, Log: GinkgoWriter, Ahead: provision.DefaultAhead})
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("facts", theLab.Facts.String())
	// What the guest really runs, for the matrix's report (not what the spec claims).
	AddReportEntry(matrix.EntryKernel, theLab.Facts.Kernel)
	AddReportEntry(matrix.EntryLXC, theLab.Facts.LXCVersion)
	// What a matrix cell records of its guest, to compare with its neighbours when it fails.
	if cf, err := provision.CellFacts(ctx, vm); err == nil {
		if data, err := json.Marshal(cf); err == nil {
			AddReportEntry(matrix.EntryFacts, string(data))
		}
	} else {
		fmt.Fprintf(GinkgoWriter, "cell facts not read: %v\n", err)
	}
}

// factsOf is the guest's facts as the suite recorded them (a report entry of BeforeSuite).
func factsOf(r Report) string {
	for _, s := range r.SpecReports {
		for _, e := range s.ReportEntries {
			if e.Name == "facts" {
				return e.StringRepresentation()
			}
		}
	}
	return ""
}

// countLine counts the suite's specs (It nodes) by how they ended; a panic or a timeout is a
// failure.
func countLine(r Report) string {
	var passed, failed, skipped int
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			continue
		}
		switch {
		case s.State == types.SpecStatePassed:
			passed++
		case s.State.Is(types.SpecStateSkipped | types.SpecStatePending):
			skipped++
		case s.State.Is(types.SpecStateFailureStates):
			failed++
		}
	}
	return fmt.Sprintf("e2e: %d passed, %d failed, %d skipped", passed, failed, skipped)
}

// attachEvidence adds the level's evidence to the report when a spec failed.
func attachEvidence(level string) {
	JustAfterEach(func(ctx SpecContext) {
		if !CurrentSpecReport().Failed() || vm == nil {
			return
		}
		for name, content := range provision.Evidence(ctx, theSpec, vm, theLab.Facts, level) {
			AddReportEntry(name, content, types.ReportEntryVisibilityFailureOrVerbose)
		}
	}, NodeTimeout(2*time.Minute))
}

// target is a level of the lab by name (host or a container).
func target(name string) remote.Target {
	GinkgoHelper()
	t, err := theLab.Target(name)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// sh runs a command line on a target and returns its trimmed stdout; it must exit 0.
func sh(ctx context.Context, t remote.Target, sudo bool, line string) string {
	GinkgoHelper()
	r, err := t.Run(ctx, remote.Cmd{Line: line, Sudo: sudo})
	Expect(err).NotTo(HaveOccurred(), "on %s: %s", t.Name(), line)
	Expect(r.ExitCode).To(BeZero(), "on %s: `%s` exited %d\nstdout: %s\nstderr: %s", t.Name(), line, r.ExitCode, r.Stdout, r.Stderr)
	return strings.TrimSpace(r.Stdout)
}

// try runs a command line and returns the whole result (for commands that must fail).
func try(ctx context.Context, t remote.Target, sudo bool, line string) remote.Result {
	GinkgoHelper()
	r, err := t.Run(ctx, remote.Cmd{Line: line, Sudo: sudo})
	Expect(err).NotTo(HaveOccurred(), "on %s: %s", t.Name(), line)
	return r
}
