package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
)

func resetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "bring the lab back to the snapshot taken after its first green provision (seconds)",
		Long: "Reverts the running VM to the libvirt snapshot labctl-ready, which `labctl up` takes after the\n" +
			"lab's first green provision: every level as it was then, in seconds instead of a new lab. When\n" +
			"the spec (or labctl) changed since, it provisions the reverted lab and takes the snapshot again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			start := time.Now()
			s, err := g.openSession(ctx, out, false, "reset")
			if err != nil {
				return err
			}
			defer s.Close()
			changed, err := s.lab.Reset(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "lab %s: reverted to its ready snapshot in %s\n", s.lab.Spec.Name, fmtDur(time.Since(start)))
			if !changed {
				return nil
			}
			fmt.Fprintln(out, "the spec or labctl changed since the snapshot: provisioning")
			if err := s.connect(ctx); err != nil {
				return err
			}
			p, err := s.provisioner(ctx, provision.Options{Out: out})
			if err != nil {
				return err
			}
			if _, err := p.Run(ctx); err != nil {
				return err
			}
			// The next reset comes back here, not to the lab of the old spec.
			if _, err := stopAgent(ctx, s.lab); err != nil {
				return err
			}
			if err := s.lab.RetakeReady(ctx); err != nil {
				return fmt.Errorf("the lab is provisioned, but its ready snapshot could not be taken again: %w", err)
			}
			fmt.Fprintf(out, "ready snapshot %s taken again\n", lab.ReadySnapshot)
			return nil
		},
	}
}
