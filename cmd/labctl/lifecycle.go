package main

import (
	"fmt"
	"io"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/spf13/cobra"
)

func haltCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "halt",
		Short: "stop the lab's VM (keeps it)",
		Long: "Ends the lab's agent and powers the VM off from the inside (`systemctl poweroff`: the guest\n" +
			"stops its containers and unmounts the data disk), watching libvirt until it is off; `vagrant\n" +
			"halt` when that is not possible (another provider, or no clean end within 3 minutes).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			out := cmd.OutOrStdout()
			return g.withLab(func(l *lab.Lab, log io.Writer) error {
				how, err := l.Halt(cmd.Context(), out, g.connectOptions(log))
				if err == nil {
					fmt.Fprintf(out, "lab %s halted in %s (%s)\n", l.Spec.Name, fmtDur(time.Since(start)), how)
				}
				return err
			})
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
			l, err := g.openLab()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			gone, err := l.Destroy(cmd.Context(), out)
			if err != nil {
				return err
			}
			if len(gone) == 0 {
				fmt.Fprintf(out, "lab %s: nothing to destroy\n", l.Spec.Name)
				return nil
			}
			fmt.Fprintf(out, "lab %s destroyed: %v\n", l.Spec.Name, gone)
			return nil
		},
	}
}

func resetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reset",
		Short: "bring the lab back to the snapshot taken after its first green provision (seconds)",
		Long: "Reverts the running VM to the libvirt snapshot labctl-ready, which `labctl up` takes after the\n" +
			"lab's first green provision: every level as it was then, in seconds instead of a new lab. When\n" +
			"the spec (or labctl) changed since, it provisions the reverted lab and takes the snapshot again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withLab(func(l *lab.Lab, log io.Writer) error {
				return l.Reset(cmd.Context(), cmd.OutOrStdout(), g.connectOptions(log))
			})
		},
	}
}
