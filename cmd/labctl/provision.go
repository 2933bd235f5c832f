package main

import (
	"github.com/spf13/cobra"

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
			ctx := cmd.Context()
			s, err := g.openSession(ctx, cmd.OutOrStdout(), true, "provision")
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := s.provisioner(ctx, provision.Options{ForceFormat: force, Plan: plan, Out: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			_, err = p.Run(ctx)
			return err
		},
	}
	cmd.Flags().BoolVar(&plan, "plan", false, "only check, and list what would change")
	cmd.Flags().BoolVar(&force, "force-format", false, "let the data-disk step format a disk that is not blank (destroys its data)")
	return cmd
}
