package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision/remote"
)

func execCmd(g *globals) *cobra.Command {
	var level string
	var sudo bool
	cmd := &cobra.Command{
		Use:   "exec [--level host|CONTAINER] [--sudo] -- CMD [ARG...]",
		Short: "run a command at a nesting level: exec [--level host|box1|n1] -- CMD",
		Long: "Runs CMD over the lab's pinned SSH connection: on the VM as the lab user (--sudo: as root),\n" +
			"or inside a container as its root (box1 through lxc-attach, n1 through box1). The exit code\n" +
			"is CMD's. A single CMD word with spaces is run by sh -c; several are quoted one by one.\n" +
			"Standard input is passed on when it is a pipe or a file, not a terminal (use `labctl ssh`).",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("no command: labctl exec [--level L] -- CMD")}
			}
			line := args[0]
			if len(args) > 1 {
				line = remote.Join(args...)
			}
			ctx := cmd.Context()
			return g.withConn(ctx, func(_ *lab.Lab, c *lab.Conn) error {
				t, err := c.Target(ctx, level)
				if err != nil {
					return fmt.Errorf("--level: %w", err)
				}
				rc := remote.Cmd{Line: line, Sudo: sudo, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
				// A terminal is not passed on: the SSH session would wait for its end-of-file.
				if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
					rc.Stdin = os.Stdin
				}
				r, err := t.Run(ctx, rc)
				if err != nil {
					return err
				}
				if r.ExitCode != 0 {
					return exitError{code: r.ExitCode}
				}
				return nil
			})
		},
	}
	// CMD's own words are never labctl's flags: flags go before it (or before --).
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&level, "level", lab.Host, "host (the VM), or a container's name")
	cmd.Flags().BoolVar(&sudo, "sudo", false, "on the VM, run as root")
	return cmd
}
