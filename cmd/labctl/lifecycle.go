package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
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
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			start := time.Now()
			s, err := g.openSession(ctx, out, false, "halt")
			if err != nil {
				return err
			}
			defer s.Close()
			how, err := lab.Halt(ctx, s.lab, s.vagrant, func(ctx context.Context) error {
				// Over SSH: the agents end with the host's (one attached in box1 keeps its
				// systemd from halting until LXC's 60 s stop timeout).
				if err := s.connectSSH(ctx); err != nil {
					return err
				}
				p, err := s.provisioner(ctx, provision.Options{})
				if err != nil {
					return err
				}
				if err := p.StopContainers(ctx); err != nil {
					fmt.Fprintf(out, "%v: the guest's shutdown stops it\n", err)
				}
				_, err = remote.Must(ctx, s.vm, remote.Cmd{Line: "systemctl poweroff --no-block", Sudo: true})
				return err
			}, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "lab %s halted in %s (%s)\n", s.lab.Spec.Name, fmtDur(time.Since(start)), how)
			return nil
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
