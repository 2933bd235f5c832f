package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/render"
)

func renderCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "render",
		Short: "write the Vagrantfile and every guest file of a lab to a directory",
		Long: "Renders DIR/Vagrantfile, every whole guest file at DIR/guest/<guest path> and every set of\n" +
			"lines ensured in a shared file at DIR/guest/<guest path>.lines. Default DIR: tmp/<lab>.\n" +
			"It takes no lock and changes no state: a port the lab has not recorded yet is a free one now.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLab()
			if err != nil {
				return err
			}
			vin, notice, err := l.VagrantInputs()
			if err != nil {
				return err
			}
			if notice != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), notice)
			}
			r, err := render.Render(l.Spec, vin, render.GuestInputs{LXCVersion: l.Spec.LXC.Version})
			if err != nil {
				return err
			}
			dir := out
			if dir == "" {
				dir = l.Dir
			}
			wrote, err := r.WriteTo(dir)
			if err != nil {
				return err
			}
			for _, w := range wrote {
				fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, w))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output directory (default tmp/<lab name>)")
	return cmd
}
