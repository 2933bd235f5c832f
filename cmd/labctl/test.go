package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/spf13/cobra"

	"github.com/labctl/labctl/e2e/labtest"
	"github.com/labctl/labctl/e2e/suite"
)

// testFlags are `labctl test`'s own flags.
type testFlags struct {
	labelFilter, junit, json string
	focus                    []string
	verbose, up, keep, reset bool
	keepFailed               bool
	timeout                  time.Duration
}

func testCmd(g *globals) *cobra.Command {
	var f testFlags
	cmd := &cobra.Command{
		Use:   "test",
		Short: "prove the lab, level by level, with labctl's e2e suite (Ginkgo, built in)",
		Long: "Runs labctl's e2e suite (the one `ginkgo ./e2e` runs in labctl's repository, built into this\n" +
			"binary) against the lab (-f, --preset, ./lab.yaml, as every verb): one Ordered container per\n" +
			"level, driven by the spec. --up brings the lab up first and destroys it after (unless --keep;\n" +
			"--keep-failed keeps it only when something failed);\n" +
			"--reset brings it back to its ready snapshot first. Reports also go to tmp/<lab>/reports/.\n" +
			"Exit code 0 when every spec passed, 1 otherwise (Ginkgo's).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runTest(g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.labelFilter, "label-filter", "", "run the specs whose labels match (Ginkgo's syntax, e.g. 'level:nested' or '!slow')")
	fl.StringArrayVar(&f.focus, "focus", nil, "run the specs whose text matches this regular expression (repeatable)")
	fl.StringVar(&f.junit, "junit", "", "write a JUnit report to this file")
	fl.StringVar(&f.json, "json", "", "write Ginkgo's JSON report to this file")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print each spec as it runs, with its output")
	fl.DurationVar(&f.timeout, "timeout", time.Hour, "fail the suite after this long")
	fl.BoolVar(&f.up, "up", false, "bring the lab up before the specs (labctl up), and destroy it after them")
	fl.BoolVar(&f.keep, "keep", false, "with --up: keep the lab after the specs")
	fl.BoolVar(&f.keepFailed, "keep-failed", false, "with --up: keep the lab when a spec (or labctl up) failed, destroy it when all passed")
	fl.BoolVar(&f.reset, "reset", false, "bring the lab back to its ready snapshot (labctl reset) before the specs")
	return cmd
}

// failed is the suite's testing stand-in: it records that a spec failed.
type failed struct{ yes bool }

func (f *failed) Fail() { f.yes = true }

// runTest runs the suite built into labctl against the lab the global flags name.
func runTest(g *globals, f testFlags) error {
	if g.file == "-" {
		return usageError{errors.New("labctl test reads the spec from a file, a preset or ./lab.yaml, not standard input")}
	}
	switch {
	case (f.keep || f.keepFailed) && !f.up:
		return usageError{errors.New("--keep and --keep-failed go with --up (a lab the suite brings up); without --up the suite never destroys the lab")}
	case f.keep && f.keepFailed:
		return usageError{errors.New("--keep keeps the lab whatever happens, --keep-failed only when something failed: give one")}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	file := g.file
	if file != "" {
		if file, err = filepath.Abs(file); err != nil {
			return err
		}
	}
	sc, rc := ginkgo.GinkgoConfiguration()
	sc.LabelFilter, sc.FocusStrings, sc.Timeout = f.labelFilter, f.focus, f.timeout
	rc.JUnitReport, rc.JSONReport, rc.Verbose = f.junit, f.json, f.verbose
	o := suite.Options{
		Lab: labtest.Options{File: file, Preset: g.preset, StateDir: g.stateDirAbs(), Libvirt: g.libvirt, Labctl: exe, InsecureIgnoreHostKey: g.insecure},
		Up:  f.up, Keep: f.keep, KeepFailed: f.keepFailed, Reset: f.reset,
	}
	var t failed
	if !suite.Run(&t, o, sc, rc) || t.yes {
		return exitError{1}
	}
	fmt.Fprintln(os.Stderr, "labctl test: every spec passed")
	return nil
}
