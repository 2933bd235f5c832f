package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/matrix"
)

// matrixOut is where the matrix writes: tmp/matrix/ of the project.
const matrixOut = "tmp/matrix"

func matrixCmd(g *globals) *cobra.Command {
	m := &cobra.Command{
		Use:   "matrix",
		Short: "the kernel/LXC matrix: list, run, report, merge, plan (a cell per kernel and LXC)",
		Long: "The kernel/LXC matrix: each cell is a preset plus lab.yaml overrides, run as a lab of its own\n" +
			"named after the cell (labctl up, the e2e suite, labctl destroy). -f names a matrix file here\n" +
			"(default: the embedded one, `labctl matrix show`). Results go to " + matrixOut + "/: cells/<cell>/\n" +
			"(lab.yaml, run.log, report.json, junit.xml, result.json), junit.xml, summary.md, summary.html.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{errors.New("usage: labctl matrix list|run|report|merge|plan|show")}
		},
	}
	load := func() (*matrix.File, error) {
		if g.preset != "" {
			return nil, usageError{errors.New("--preset is not a matrix: cells name their presets; pass a matrix file with -f, or none for the default")}
		}
		return matrix.Load(g.file)
	}
	var cells string
	// loadCells is the matrix and the cells --cells names (all for none).
	loadCells := func() (*matrix.File, []matrix.Cell, error) {
		f, err := load()
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for _, n := range strings.Split(cells, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		cs, err := f.Select(names)
		return f, cs, err
	}
	h := &matrix.ThisHost{}

	show := &cobra.Command{
		Use:   "show",
		Short: "print the embedded matrix file (start your own -f from it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(matrix.DefaultFile())
			return err
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "list the cells: box, kernel and LXC each wants, what it needs, whether this host runs it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cs, err := loadCells()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CELL\tPRESET\tBOX\tKERNEL\tLXC\tRUNS HERE\tNEEDS")
			for _, c := range cs {
				n := matrix.NeedsOf(c, h)
				here := "yes"
				if !n.Runnable {
					here = "no: " + n.Reason
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Preset, c.Spec.BoxName(), c.Spec.Kernel, c.Spec.LXC.Expect, here, strings.Join(n.What, "; "))
			}
			return tw.Flush()
		},
	}
	var jobs int
	var keep bool
	var suite string
	run := &cobra.Command{
		Use:   "run",
		Short: "run the cells (--cells a,b; default all), --jobs at a time; legacy cells this host cannot run are skipped with the reason",
		Long: "Runs each cell as a lab of its own (tmp/<cell>/, its own port and disk): labctl up, the e2e\n" +
			"suite, labctl destroy (--keep leaves it up). A cell this host cannot run is recorded as skipped\n" +
			"with its reason. --jobs is bounded by the host's free memory (each cell's VM memory + 512 MiB);\n" +
			"the default is what fits, at most one cell per 2 cores. The e2e suite is built from ./e2e\n" +
			"(`go test -c`) unless --suite names a built one. Exits 1 when a cell that ran failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, cs, err := loadCells()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			machine := host.Describe()
			var runnable []matrix.Cell
			mem := 0
			for _, c := range cs {
				if matrix.NeedsOf(c, h).Runnable {
					runnable = append(runnable, c)
					mem = max(mem, c.Spec.Memory+512)
				}
			}
			if len(runnable) > 0 {
				if jobs, err = matrixJobs(jobs, mem, len(runnable)); err != nil {
					return err
				}
			}
			s := matrix.Suite{Bin: suite, Keep: keep}
			if len(runnable) > 0 {
				if s.Dir, err = filepath.Abs("e2e"); err != nil {
					return err
				}
				if _, err := os.Stat(filepath.Join(s.Dir, "e2e_suite_test.go")); err != nil && suite == "" {
					return fmt.Errorf("the e2e suite is not here (%s): run `labctl matrix run` from labctl's repository, or pass a built suite with --suite", s.Dir)
				}
				if s.Labctl, err = os.Executable(); err != nil {
					return err
				}
				if s.Bin == "" {
					if s.Bin, err = buildSuite(cmd, out); err != nil {
						return err
					}
				} else if s.Bin, err = filepath.Abs(s.Bin); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(matrixOut, 0o755); err != nil {
				return err
			}
			fmt.Fprintf(out, "matrix: %d cells (%d run here, %d at a time), on %s\n", len(cs), len(runnable), max(jobs, 1), machine)
			start := time.Now()
			_, runErr := matrix.Run(cmd.Context(), f, cs, matrix.Options{Out: matrixOut, Jobs: jobs, Runner: s, Host: h, Progress: out, Machine: machine})
			var names []string
			for _, c := range cs {
				names = append(names, c.Name)
			}
			if err := matrix.WriteRunInfo(matrixOut, matrix.RunInfo{Started: start.UTC(), Seconds: time.Since(start).Round(time.Second).Seconds(), Jobs: max(jobs, 1), Cells: names, Machine: machine}); err != nil {
				return err
			}
			if runErr != nil {
				return runErr
			}
			return report(cmd)
		},
	}
	run.Flags().IntVar(&jobs, "jobs", 0, "cells at once (default: what the host's free memory and cores fit)")
	run.Flags().BoolVar(&keep, "keep", false, "keep each cell's lab after its suite (labctl destroy -f tmp/matrix/cells/<cell>/lab.yaml)")
	run.Flags().StringVar(&suite, "suite", "", "a built e2e suite (go test -c -o e2e.test ./e2e) instead of building ./e2e")
	rep := &cobra.Command{
		Use:   "report",
		Short: "write the summary (Markdown, HTML) and the merged JUnit from the cells' results; exit 1 if a cell failed",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return report(cmd) },
	}
	merge := &cobra.Command{
		Use:   "merge DIR...",
		Short: "gather results made elsewhere (CI jobs' tmp/matrix) into tmp/matrix and report them",
		Long: "Gathers every cell result under the directories (matrix outputs, cell directories, CI\n" +
			"artifacts holding them) into " + matrixOut + "/cells/, then reports. Cells of the matrix (--cells, default\n" +
			"all) that no directory holds are completed: skipped with the reason when this host cannot run\n" +
			"them, failed (\"no result\") when it could.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, cs, err := loadCells()
			if err != nil {
				return err
			}
			merged, err := matrix.Merge(matrixOut, args, f, cs, h, host.Describe())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %d cell results: %s\n", len(merged), strings.Join(merged, ", "))
			return report(cmd)
		},
	}
	var format string
	plan := &cobra.Command{
		Use:   "plan",
		Short: "print the cells this host runs as a CI job matrix: --format github (strategy.matrix JSON) or gitlab (parallel:matrix YAML)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cs, err := loadCells()
			if err != nil {
				return err
			}
			data, err := matrix.Plan(cs, h, format)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	plan.Flags().StringVar(&format, "format", "github", "github or gitlab")
	for _, c := range []*cobra.Command{list, run, merge, plan} {
		c.Flags().StringVar(&cells, "cells", "", "comma-separated cell names (default: every cell)")
	}
	m.AddCommand(show, list, run, rep, merge, plan)
	return m
}

// matrixJobs checks --jobs against the host's free memory (mem MiB per cell) and picks the
// default: what fits, at most one cell per 2 cores, at most the cells there are.
func matrixJobs(jobs, mem, cells int) (int, error) {
	free := host.MemAvailableMiB()
	fits := free / mem
	if fits < 1 {
		return 0, fmt.Errorf("no cell fits in this host's free memory (%d MiB available, a cell needs %d MiB): stop other VMs, or lower memory: in the cells' lab", free, mem)
	}
	if jobs > fits {
		return 0, fmt.Errorf("--jobs %d: only %d cells fit in this host's free memory (%d MiB available, %d MiB each): use --jobs %d or less", jobs, fits, free, mem, fits)
	}
	if jobs < 0 {
		return 0, usageError{fmt.Errorf("--jobs %d: use a positive number, or leave it out for what fits", jobs)}
	}
	if jobs == 0 {
		jobs = min(fits, max(1, runtime.NumCPU()/2), cells)
	}
	return jobs, nil
}

// buildSuite compiles the e2e suite once into tmp/matrix/e2e.test.
func buildSuite(cmd *cobra.Command, out interface{ Write([]byte) (int, error) }) (string, error) {
	bin, err := filepath.Abs(filepath.Join(matrixOut, "e2e.test"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(matrixOut, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "matrix: building the e2e suite (go test -c -o %s ./e2e)\n", bin)
	c := host.Command(cmd.Context(), "go", "test", "-c", "-o", bin, "./e2e")
	if b, err := c.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("building the e2e suite needs go on PATH (or pass a built suite with --suite)")
		}
		return "", fmt.Errorf("build the e2e suite: %v: %s", err, b)
	}
	return bin, nil
}

// report writes the summary and the merged JUnit, prints where, and fails when a cell did.
func report(cmd *cobra.Command) error {
	r, err := matrix.WriteReport(matrixOut)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "\n%s\nmatrix: %s\nreports: %s/summary.md, summary.html, junit.xml; per cell: %s/cells/<cell>/\n",
		r.Markdown(), r.Headline(), matrixOut, matrixOut)
	if failed := r.Failed(); len(failed) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "labctl: matrix: %d cells failed: %s (see %s/cells/<cell>/run.log)\n", len(failed), strings.Join(failed, ", "), matrixOut)
		return exitError{1}
	}
	return nil
}
