package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
)

func haltCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "halt",
		Short: "stop the lab's VM (keeps it)",
		Long:  "Stops the VM with `vagrant halt`.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openSession(cmd.Context(), cmd.OutOrStdout(), false, "halt")
			if err != nil {
				return err
			}
			defer s.Close()
			return s.vagrant.Halt(cmd.Context())
		},
	}
}

func destroyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "destroy",
		Short: "remove the VM, its disks and volumes, the pinned host key and the state",
		Long: "Destroys the VM (vagrant destroy -f), deletes the lab's volumes from labctl's libvirt pool,\n" +
			"the pinned known_hosts and the state. Boxes and images stay cached.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openSession(cmd.Context(), cmd.OutOrStdout(), false, "destroy")
			if err != nil {
				return err
			}
			defer s.Close()
			gone, err := lab.Destroy(cmd.Context(), s.lab, s.vagrant)
			if err != nil {
				return err
			}
			if len(gone) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s: nothing to destroy\n", s.lab.Spec.Name)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s destroyed: %v\n", s.lab.Spec.Name, gone)
			return nil
		},
	}
}
