package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/labctl/labctl/lab"
	"github.com/spf13/cobra"
)

func sshCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh [-- SSH-ARGS]",
		Short: "open an interactive shell on the VM (host key checked against the pin)",
		Long:  "Runs ssh to the VM with the lab's key and its pinned known_hosts (StrictHostKeyChecking yes).",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var e lab.SSHEndpoint
			var knownHosts string
			err := g.withConn(ctx, func(l *lab.Lab, _ *lab.Conn) error { // connecting pins the key on first use
				var err error
				e, err = l.SSHEndpoint(ctx)
				knownHosts = l.KnownHosts()
				return err
			})
			if err != nil {
				return err
			}
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("ssh is not installed: apt-get install openssh-client")
			}
			argv := []string{"ssh", "-p", strconv.Itoa(e.Port), "-i", e.IdentityFiles[0], "-o", "IdentitiesOnly=yes",
				"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts, e.User + "@" + e.Host}
			argv = append(argv, args...)
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	cmd.Flags().SetInterspersed(false) // SSH-ARGS are ssh's
	return cmd
}
