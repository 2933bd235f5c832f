// Package e2e proves each nesting level of a real lab, driven by its spec: `ginkgo ./e2e`
// against a running lab, or `ginkgo ./e2e -- -up` to bring one up first and destroy it
// afterwards. It is written on e2e/labtest, the package users' own specs use.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// The labels of the nesting levels: `ginkgo --label-filter=level:nested ./e2e`.
const (
	LevelHost   = "level:host"
	LevelUnpriv = "level:unpriv"
	LevelNested = "level:nested"
)

// Slow marks the specs that take seconds to minutes under emulation (a reboot, stopping a
// parent, the user's own containers, the README example): the fast loop leaves them out with
// `ginkgo --label-filter='!slow' ./e2e -- -reset`.
const Slow = "slow"

var (
	flagPreset = flag.String("preset", os.Getenv("LABCTL_PRESET"), "lab preset (default: ../lab.yaml, else "+spec.DefaultPreset+")")
	flagFile   = flag.String("f", os.Getenv("LABCTL_FILE"), "lab spec file")
	flagUp     = flag.Bool("up", os.Getenv("LABCTL_E2E_UP") == "1", "bring the lab up with `labctl up` before the specs, and destroy it after them")
	flagReset  = flag.Bool("reset", os.Getenv("LABCTL_E2E_RESET") == "1", "bring the lab back to its ready snapshot with `labctl reset` before the specs")
	flagKeep   = flag.Bool("keep", os.Getenv("LABCTL_E2E_KEEP") == "1", "with -up: keep the lab after the specs")
	flagLabctl = flag.String("labctl", "", "labctl binary, relative to the repository root (default: bin/labctl)")
)

// root is the repository root (the suite runs in e2e/).
const root = ".."

// The lab under test, attached once by the suite.
var (
	theSpec *spec.Spec
	theLab  *labtest.Lab
	vm      remote.Target
	prov    *provision.Provisioner
)

func TestE2E(t *testing.T) {
	if !ranByGinkgo() && os.Getenv("LABCTL_E2E") != "1" {
		// `go test ./...` stays fast and needs no VM; the suite runs with `ginkgo ./e2e`.
		t.Skip("SKIP reason: the e2e suite proves a real lab: run it with `go tool ginkgo ./e2e` (against a running lab, or with -- -up), or set LABCTL_E2E=1")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "labctl e2e")
}

// ranByGinkgo reports whether the ginkgo CLI started this binary (it passes --ginkgo.* flags).
func ranByGinkgo() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "--ginkgo.") || strings.HasPrefix(a, "-ginkgo.") {
			return true
		}
	}
	return false
}

// options names the lab as the CLI finds it (-f, else -preset, else ../lab.yaml, else the
// default preset).
func options() labtest.Options {
	file := *flagFile
	if file != "" {
		file, _ = filepath.Abs(file)
	}
	// A relative -labctl is the repository root's, as make passes it (the suite runs in e2e/).
	bin := *flagLabctl
	if bin == "" {
		bin = filepath.Join("bin", "labctl")
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(root, bin)
	}
	bin, _ = filepath.Abs(bin)
	return labtest.Options{File: file, Preset: *flagPreset, Root: root, Labctl: bin, Log: GinkgoWriter}
}

var _ = BeforeSuite(func(ctx SpecContext) {
	o := options()
	var err error
	theSpec, err = o.Spec()
	Expect(err).NotTo(HaveOccurred())
	if *flagUp {
		if !*flagKeep {
			DeferCleanup(func(ctx SpecContext) {
				start := time.Now()
				Expect(labtest.Destroy(ctx, o)).To(Succeed())
				fmt.Fprintf(GinkgoWriter, "lab %s destroyed in %s\n", theSpec.Name, time.Since(start).Round(time.Second))
			}, NodeTimeout(10*time.Minute))
		}
		start := time.Now()
		Expect(labtest.Up(ctx, o)).To(Succeed(), "labctl up failed: see the report's output and tmp/%s/logs/", theSpec.Name)
		AddReportEntry(matrix.EntryUp, time.Since(start).Round(time.Second).String())
	}
	if *flagReset {
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
}, NodeTimeout(45*time.Minute))

// Reports go to tmp/<lab>/reports/ whichever flags ginkgo was given, and the suite ends with
// two lines: the guest's facts, and one that counts its specs: "e2e: N passed, M failed, K
// skipped".
var _ = ReportAfterSuite("reports", func(r Report) {
	if f := factsOf(r); f != "" {
		fmt.Println("e2e facts: " + f)
	}
	fmt.Println(countLine(r))
	dir, err := options().ReportDir()
	if err != nil {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	_ = reporters.GenerateJUnitReport(r, filepath.Join(dir, "junit.xml"))
	_ = reporters.GenerateJSONReport(r, filepath.Join(dir, "report.json"))
})

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

// specAtBuild is the spec as the suite's tree is built (before BeforeSuite): the containers and
// their shape decide which specs exist.
func specAtBuild() *spec.Spec {
	s, err := options().Spec()
	if err != nil {
		panic(fmt.Sprintf("e2e: cannot read the lab spec to build the suite: %v", err))
	}
	return s
}
