package main

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/provision"
)

func logsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logs",
		Short: "collect evidence per level (vagrant, lxc-start debug logs, lxc-info, dmesg) into tmp/<lab>/logs/",
		Long: "Collects, per level, what explains a failure: the VM's dmesg and lxc-net journal; each\n" +
			"container's lxc-start debug log, lxc-info and dmesg tail. Written to tmp/<lab>/logs/, listed\n" +
			"with the logs kept there all along (vagrant, provision, the VM's serial console).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.openSession(ctx, nil, true, "")
			if err != nil {
				return err
			}
			defer s.Close()
			f, err := provision.GatherFacts(ctx, s.vm, s.lab.Spec.User)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			wrote, err := provision.CollectLogs(ctx, s.lab, s.vm, f)
			for _, w := range wrote {
				fmt.Fprintln(out, path.Join(s.lab.LogDir(), w))
			}
			fmt.Fprintln(out, path.Join(s.lab.LogDir(), "vagrant.log"))
			for _, name := range []string{"provision.log", "console.log", "console-boot1.log"} {
				if _, serr := os.Stat(s.lab.Path("logs", name)); serr == nil {
					fmt.Fprintln(out, path.Join(s.lab.LogDir(), name))
				} else if !errors.Is(serr, os.ErrNotExist) {
					err = errors.Join(err, serr)
				}
			}
			return err
		},
	}
}
