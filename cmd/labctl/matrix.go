package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/matrix"
	"github.com/labctl/labctl/lab/spec"
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

// cellLabs are the labs of the cells under tmp/matrix/cells/ (each cell's lab.yaml): the
// cell named, or all.
func cellLabs(cell string) ([]string, error) {
	pattern := filepath.Join(matrixOut, "cells", "*", "lab.yaml")
	if cell != "" {
		if err := matrix.CheckCellName(cell); err != nil {
			return nil, err
		}
		pattern = filepath.Join(matrixOut, "cells", cell, "lab.yaml")
	}
	files, err := filepath.Glob(pattern)
	if err == nil && len(files) == 0 && cell != "" {
		err = fmt.Errorf("no cell %s under %s/cells: run it here first (labctl matrix run --cells %s --keep-failed, or --keep)", cell, matrixOut, cell)
	}
	return files, err
}

func attachCmd(g *globals) *cobra.Command {
	level := "host"
	cmd := &cobra.Command{
		Use:   "attach CELL [--level host|CONTAINER]",
		Short: "open a shell in a kept cell's lab: its VM, or a container at any level",
		Long: "Opens a shell in the lab of a cell that `matrix run --keep-failed` (or --keep) left up, as\n" +
			"`labctl ssh --level` does for a lab: on its VM, or inside a container (as its root).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := cellLabs(args[0])
			if err != nil {
				return err
			}
			cg := *g
			cg.file, cg.preset = files[0], ""
			return sshInto(cmd, &cg, level, nil)
		},
	}
	cmd.Flags().StringVar(&level, "level", "host", "host (the VM), or a container's name")
	return cmd
}

func cleanCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "clean",
		Short: "destroy the labs the matrix's cells left (--keep, --keep-failed, an interrupted run)",
		Long: "Runs labctl destroy on the lab of every cell under " + matrixOut + "/cells/: it removes only what\n" +
			"labctl made for that lab, and says \"nothing to destroy\" for a lab that is gone. Results stay.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := cellLabs("")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(files) > 0 {
				lk, err := matrix.LockOut(matrixOut, "matrix clean")
				if err != nil {
					return err
				}
				defer lk.Unlock()
			}
			if len(files) == 0 {
				fmt.Fprintf(out, "no cell under %s/cells: nothing to clean\n", matrixOut)
				return nil
			}
			var errs []error
			for _, f := range files {
				cg := *g
				cg.file, cg.preset = f, ""
				s, err := cg.load()
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if _, err := os.Stat(filepath.Join(cg.source().Labs(), s.Name)); errors.Is(err, os.ErrNotExist) {
					fmt.Fprintf(out, "lab %s: nothing to destroy\n", s.Name)
					continue
				}
				l, err := cg.openLab()
				if err != nil {
					errs = append(errs, err)
					continue
				}
				gone, err := l.Destroy(cmd.Context(), out)
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("lab %s: %w", l.Spec.Name, err))
				case len(gone) == 0:
					fmt.Fprintf(out, "lab %s: nothing to destroy\n", l.Spec.Name)
				default:
					fmt.Fprintf(out, "lab %s destroyed: %v\n", l.Spec.Name, gone)
				}
			}
			return errors.Join(errs...)
		},
	}
}

func (m *matrixFlags) bisectCmd() *cobra.Command {
	var good, bad, labels string
	cmd := &cobra.Command{
		Use:   "bisect --good CELL --bad CELL [--label-filter EXPR]",
		Short: "find the first bad LXC commit (or kernel) between a passing and a failing cell",
		Long: "Given a passing and a failing cell that differ on one axis, runs the cells between them,\n" +
			"halving the range each step, and prints the first bad one with what its run failed with.\n" +
			"LXC axis: both cells build lxc.source from the same git checkout at two lxc.ref; each step\n" +
			"builds a commit (cached; a commit that does not build is skipped, as git bisect run does)\n" +
			"and runs its cell (labctl test --up, the suite's specs --label-filter selects). Kernel axis:\n" +
			"two grid cells with the same LXC; the steps are the grid's kernels between theirs.\n" +
			"Steps go to " + matrixOut + "/bisect/<step>/ (lab.yaml, run.log, report.json, evidence/), the outcome\n" +
			"to " + matrixOut + "/bisect/bisect.json. The good cell is taken as good, the bad one as bad (not run).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if good == "" || bad == "" {
				return usageError{errors.New("bisect needs --good CELL (a cell that passes) and --bad CELL (one that fails): labctl matrix list names them")}
			}
			f, _, err := m.load()
			if err != nil {
				return err
			}
			var pair [2]matrix.Cell
			for i, c := range []struct{ flag, name string }{{"--good", good}, {"--bad", bad}} {
				at := f.Index(c.name)
				if at < 0 {
					return fmt.Errorf("%s: no cell %s in the matrix: labctl matrix list names them", c.flag, c.name)
				}
				pair[i] = f.Cells[at]
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			bi, err := matrix.RunBisect(cmd.Context(), f, pair[0], pair[1], matrix.BisectOptions{
				Out:      matrixOut,
				Runner:   matrix.Suite{Labctl: exe, Dir: dir, LabelFilter: labels},
				Build:    func(ctx context.Context, s *spec.Spec, log io.Writer) error { return lab.BuildLXC(ctx, s, log, log) },
				Progress: out,
			})
			if err != nil {
				return err
			}
			if bi.FirstBad == "" {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&good, "good", "", "a cell that passes")
	cmd.Flags().StringVar(&bad, "bad", "", "a cell that fails, one axis away from --good")
	cmd.Flags().StringVar(&labels, "label-filter", "", "run only these specs at each step (Ginkgo's syntax, e.g. 'level:unpriv'): a faster step, as long as they show the failure")
	return cmd
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
