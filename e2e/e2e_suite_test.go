// Package e2e runs labctl's e2e suite (e2e/suite, which labctl also ships as `labctl test`)
// from the repository: `ginkgo ./e2e` against a running lab, or `ginkgo ./e2e -- -up` to
// bring one up first and destroy it afterwards. Ginkgo's own flags (--label-filter, --focus,
// reports) apply as to any suite.
package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/e2e/labtest"
	"github.com/labctl/labctl/e2e/suite"
	"github.com/labctl/labctl/lab/spec"
)

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

func TestE2E(t *testing.T) {
	if !ranByGinkgo() && os.Getenv("LABCTL_E2E") != "1" {
		// `go test ./...` stays fast and needs no VM; the suite runs with `ginkgo ./e2e`.
		t.Skip("SKIP reason: the e2e suite proves a real lab: run it with `go tool ginkgo ./e2e` (against a running lab, or with -- -up), `labctl test`, or set LABCTL_E2E=1")
	}
	suite.Run(t, options())
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
// default preset), with the repository's labctl (bin/labctl unless -labctl says otherwise).
func options() suite.Options {
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
	src, _ := filepath.Abs(root)
	return suite.Options{
		Lab: labtest.Options{File: file, Preset: *flagPreset, Root: root, Labctl: bin},
		Up:  *flagUp, Keep: *flagKeep, Reset: *flagReset, Source: src,
	}
}
