package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/matrix"
)

// matrixOut is where the matrix writes: tmp/matrix/ of the project.
const matrixOut = "tmp/matrix"

// matrixFlags are what the matrix's sub-verbs share: the matrix file (-f) and --cells.
type matrixFlags struct {
	g     *globals
	cells string
	host  *matrix.ThisHost
}

// load is the matrix and the cells --cells names (all for none).
func (m *matrixFlags) load() (*matrix.File, []matrix.Cell, error) {
	if m.g.preset != "" {
		return nil, nil, usageError{errors.New("--preset is not a matrix: cells name their presets; pass a matrix file with -f, or none for the default")}
	}
	f, err := matrix.Load(m.g.file)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, n := range strings.Split(m.cells, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	cs, err := f.Select(names)
	return f, cs, err
}

func matrixCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
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
	m := &matrixFlags{g: g, host: &matrix.ThisHost{}}
	show := &cobra.Command{
		Use:   "show",
		Short: "print the embedded matrix file (start your own -f from it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(matrix.DefaultFile())
			return err
		},
	}
	rep := &cobra.Command{
		Use:   "report",
		Short: "write the summary (Markdown, HTML) and the merged JUnit from the cells' results; exit 1 if a cell failed",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return report(cmd) },
	}
	withCells := []*cobra.Command{m.listCmd(), m.runCmd(), m.mergeCmd(), m.planCmd()}
	for _, c := range withCells {
		c.Flags().StringVar(&m.cells, "cells", "", "comma-separated cell names (default: every cell)")
	}
	root.AddCommand(append(withCells, show, rep, attachCmd(g), cleanCmd(g), m.bisectCmd())...)
	return root
}

func (m *matrixFlags) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list the cells: box, kernel and LXC each wants, what it needs, whether this host runs it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cs, err := m.load()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CELL\tUSERLAND\tKERNEL\tLXC\tCGROUP\tBOX\tRUNS HERE\tNEEDS")
			for _, c := range cs {
				n := matrix.NeedsOf(c, m.host)
				here := "yes"
				switch {
				case n.Excluded:
					here = "excluded: " + n.Reason
				case !n.Runnable:
					here = "no: " + n.Reason
				}
				userland, kernel, lxcV, cgroup := c.Axes()
				box := "-"
				if c.Spec != nil {
					box = c.Spec.BoxName()
					if userland == "" { // a box labctl does not build: what the cell wants
						kernel, lxcV = c.Spec.Kernel, c.Spec.LXC.Expect
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, dash(userland), kernel, lxcV, dash(cgroup), box, here, strings.Join(n.What, "; "))
			}
			return tw.Flush()
		},
	}
}

func (m *matrixFlags) runCmd() *cobra.Command {
	o := matrix.RunAllOptions{Out: matrixOut, Host: m.host}
	run := &cobra.Command{
		Use:   "run",
		Short: "run the cells (--cells a,b; default all), --jobs at a time; legacy cells this host cannot run are skipped with the reason",
		Long: "Runs each cell as a lab of its own (tmp/<cell>/, its own port and disk): labctl up, the e2e\n" +
			"suite, labctl destroy (--keep leaves it up). A cell this host cannot run is recorded as skipped\n" +
			"with its reason. --jobs is bounded by the host's free memory (each cell's VM memory + 512 MiB);\n" +
			"the default is what fits, at most one cell per 2 cores. Each cell runs `labctl test --up` (the\n" +
			"suite built into labctl; --suite names another labctl build to run it with). Exits 1 when a\n" +
			"cell that ran failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Jobs < 0 {
				return usageError{fmt.Errorf("--jobs %d: use a positive number, or leave it out for what fits", o.Jobs)}
			}
			f, cs, err := m.load()
			if err != nil {
				return err
			}
			if o.Dir, err = filepath.Abs("."); err != nil {
				return err
			}
			if o.Labctl == "" {
				if o.Labctl, err = os.Executable(); err != nil {
					return err
				}
			} else if o.Labctl, err = filepath.Abs(o.Labctl); err != nil {
				return err
			}
			o.Progress = cmd.OutOrStdout()
			if err := matrix.RunAll(cmd.Context(), f, cs, o); err != nil {
				return err
			}
			return report(cmd)
		},
	}
	run.Flags().IntVar(&o.Jobs, "jobs", 0, "cells at once (default: what the host's free memory and cores fit)")
	run.Flags().BoolVar(&o.Keep, "keep", false, "keep each cell's lab after its suite (labctl matrix clean removes them)")
	run.Flags().BoolVar(&o.KeepFailed, "keep-failed", false, "keep the labs of the cells that failed, destroy the others (labctl matrix attach CELL; matrix clean)")
	run.MarkFlagsMutuallyExclusive("keep", "keep-failed")
	run.Flags().StringVar(&o.Labctl, "suite", "", "another labctl binary whose `test` verb runs the suite (default: this labctl)")
	return run
}

func (m *matrixFlags) mergeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "merge DIR...",
		Short: "gather results made elsewhere (CI jobs' tmp/matrix) into tmp/matrix and report them",
		Long: "Gathers every cell result under the directories (matrix outputs, cell directories, CI\n" +
			"artifacts holding them) into " + matrixOut + "/cells/, then reports. Cells of the matrix (--cells, default\n" +
			"all) that no directory holds are completed: skipped with the reason when this host cannot run\n" +
			"them, failed (\"no result\") when it could.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, cs, err := m.load()
			if err != nil {
				return err
			}
			merged, err := matrix.Merge(matrixOut, args, f, cs, m.host, host.Describe())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %d cell results: %s\n", len(merged), strings.Join(merged, ", "))
			return report(cmd)
		},
	}
}

func (m *matrixFlags) planCmd() *cobra.Command {
	var format string
	plan := &cobra.Command{
		Use:   "plan",
		Short: "print the cells this host runs as a CI job matrix: --format github (strategy.matrix JSON) or gitlab (parallel:matrix YAML)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cs, err := m.load()
			if err != nil {
				return err
			}
			data, err := matrix.Plan(cs, m.host, format)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	plan.Flags().StringVar(&format, "format", "github", "github or gitlab")
	return plan
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
