// Package e2e proves each nesting level of a real lab: `ginkgo ./e2e` against a running lab,
// or `ginkgo ./e2e -- -up` to bring one up first and destroy it afterwards.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
)

// The labels of the nesting levels: `ginkgo --label-filter=level:nested ./e2e`.
const (
	LevelHost   = "level:host"
	LevelUnpriv = "level:unpriv"
	LevelNested = "level:nested"
)

var (
	flagPreset = flag.String("preset", os.Getenv("LABCTL_PRESET"), "lab preset (default: ../lab.yaml, else "+lab.DefaultPreset+")")
	flagFile   = flag.String("f", os.Getenv("LABCTL_FILE"), "lab spec file")
	flagUp     = flag.Bool("up", os.Getenv("LABCTL_E2E_UP") == "1", "bring the lab up with `labctl up` before the specs, and destroy it after them")
	flagKeep   = flag.Bool("keep", os.Getenv("LABCTL_E2E_KEEP") == "1", "with -up: keep the lab after the specs")
	flagLabctl = flag.String("labctl", "", "labctl binary for -up (default: go run ../cmd/labctl)")
)

// root is the repository root (the suite runs in e2e/).
const root = ".."

// The lab under test, opened once by the suite.
var (
	spec    *lab.Spec
	theLab  *lab.Lab
	comm    *provision.Comm
	vm      *provision.VM
	prov    *provision.Provisioner
	targets map[string]*provision.Container
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

func loadSpec() (*lab.Spec, error) {
	switch {
	case *flagFile != "":
		return lab.Load(*flagFile)
	case *flagPreset != "":
		return lab.Preset(*flagPreset)
	}
	if _, err := os.Stat(filepath.Join(root, "lab.yaml")); err == nil {
		return lab.Load(filepath.Join(root, "lab.yaml"))
	}
	return lab.Preset(lab.DefaultPreset)
}

// labctl runs the labctl CLI in the repository root, its output going to the report.
func labctl(ctx context.Context, args ...string) error {
	specArgs := []string{"--preset", spec.Name}
	if *flagFile != "" {
		abs, _ := filepath.Abs(*flagFile)
		specArgs = []string{"-f", abs}
	}
	var cmd *exec.Cmd
	if *flagLabctl != "" {
		cmd = exec.CommandContext(ctx, *flagLabctl, append(args, specArgs...)...)
	} else {
		cmd = exec.CommandContext(ctx, "go", append(append([]string{"run", "./cmd/labctl"}, args...), specArgs...)...)
	}
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	return cmd.Run()
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	spec, err = loadSpec()
	Expect(err).NotTo(HaveOccurred())
	theLab, err = lab.Open(root, spec)
	Expect(err).NotTo(HaveOccurred())
	if *flagUp {
		if !*flagKeep {
			DeferCleanup(func(ctx SpecContext) {
				start := time.Now()
				Expect(labctl(ctx, "destroy")).To(Succeed())
				fmt.Fprintf(GinkgoWriter, "lab %s destroyed in %s\n", spec.Name, time.Since(start).Round(time.Second))
			}, NodeTimeout(10*time.Minute))
		}
		start := time.Now()
		Expect(labctl(ctx, "up")).To(Succeed(), "labctl up failed: see the report's output and tmp/%s/logs/", spec.Name)
		AddReportEntry("labctl up", time.Since(start).Round(time.Second).String())
	}
	v, closeV, err := lab.NewVagrant(theLab, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(closeV)
	state, err := v.Status(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(state).To(Equal("running"), "no running lab %q: run `labctl up --preset %s` first, or pass -up", spec.Name, spec.Name)
	comm, err = provision.Connect(ctx, theLab, v, provision.ConnectOptions{Log: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(comm.Close)
	vm = &provision.VM{Conn: comm}
	prov, err = provision.New(ctx, theLab, vm, comm, provision.Options{Out: GinkgoWriter, Log: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())
	targets = provision.Targets(spec, vm, prov.Facts)
	AddReportEntry("facts", prov.Facts.String())
}, NodeTimeout(45*time.Minute))

// Reports go to tmp/<lab>/reports/ whichever flags ginkgo was given.
var _ = ReportAfterSuite("reports", func(r Report) {
	s, err := loadSpec()
	if err != nil {
		return
	}
	dir := filepath.Join(root, "tmp", s.Name, "reports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	_ = reporters.GenerateJUnitReport(r, filepath.Join(dir, "junit.xml"))
	_ = reporters.GenerateJSONReport(r, filepath.Join(dir, "report.json"))
})

// attachEvidence adds the level's evidence to the report when a spec failed.
func attachEvidence(level string) {
	JustAfterEach(func(ctx SpecContext) {
		if !CurrentSpecReport().Failed() || vm == nil {
			return
		}
		for name, content := range provision.Evidence(ctx, spec, vm, prov.Facts, level) {
			AddReportEntry(name, content, types.ReportEntryVisibilityFailureOrVerbose)
		}
	}, NodeTimeout(2*time.Minute))
}

// sh runs a command line on a target and returns its trimmed stdout; it must exit 0.
func sh(ctx context.Context, t provision.Target, sudo bool, line string) string {
	GinkgoHelper()
	r, err := t.Run(ctx, provision.Cmd{Line: line, Sudo: sudo})
	Expect(err).NotTo(HaveOccurred(), "on %s: %s", t.Name(), line)
	Expect(r.ExitCode).To(BeZero(), "on %s: `%s` exited %d\nstdout: %s\nstderr: %s", t.Name(), line, r.ExitCode, r.Stdout, r.Stderr)
	return strings.TrimSpace(r.Stdout)
}

// try runs a command line and returns the whole result (for commands that must fail).
func try(ctx context.Context, t provision.Target, sudo bool, line string) provision.Result {
	GinkgoHelper()
	r, err := t.Run(ctx, provision.Cmd{Line: line, Sudo: sudo})
	Expect(err).NotTo(HaveOccurred(), "on %s: %s", t.Name(), line)
	return r
}
