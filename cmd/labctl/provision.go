package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
)

func provisionCmd(g *globals) *cobra.Command {
	var plan, force bool
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "run the provisioning steps on the lab's VM (idempotent); --plan only lists",
		Long: "Runs the ordered, idempotent steps that turn the booted VM into the lab. One line per step\n" +
			"(ok / changed / failed, with its time); ends with `N changed, M ok`. --plan changes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withLab(func(l *lab.Lab, log io.Writer) error {
				opts := provision.Options{ForceFormat: force, Plan: plan, Out: cmd.OutOrStdout(), Ahead: provision.DefaultAhead}
				_, err := l.Provision(cmd.Context(), g.connectOptions(log), opts)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&plan, "plan", false, "only check, and list what would change")
	cmd.Flags().BoolVar(&force, "force-format", false, "let the data-disk step format a disk that is not blank (destroys its data)")
	return cmd
}
