package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/matrix"
	"github.com/labctl/labctl/lab/spec"
)

// The matrix's verbs on its cells' labs: attach to a kept one, clean them up, bisect between
// two cells.

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
