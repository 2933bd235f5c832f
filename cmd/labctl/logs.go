package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/labdir"
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
			return g.withConn(ctx, func(l *lab.Lab, c *lab.Conn) error {
				f, err := c.Facts(ctx)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				wrote, err := provision.CollectLogs(ctx, l.Spec, c.VM(), f, l.LogDir())
				for _, w := range wrote {
					fmt.Fprintln(out, l.Log(w))
				}
				fmt.Fprintln(out, l.Log(labdir.VagrantLog))
				for _, name := range []string{labdir.ProvisionLog, labdir.ConsoleLog, labdir.ConsoleBoot1} {
					if _, serr := os.Stat(l.Log(name)); serr == nil {
						fmt.Fprintln(out, l.Log(name))
					} else if !errors.Is(serr, os.ErrNotExist) {
						err = errors.Join(err, serr)
					}
				}
				return err
			})
		},
	}
}
