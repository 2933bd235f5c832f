package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

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
			l, _, done, err := g.connected(ctx) // connecting pins the key on first use
			if err != nil {
				return err
			}
			done()
			e, err := l.SSHEndpoint(ctx)
			if err != nil {
				return err
			}
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("ssh is not installed: apt-get install openssh-client")
			}
			argv := []string{"ssh", "-p", strconv.Itoa(e.Port), "-i", e.IdentityFiles[0], "-o", "IdentitiesOnly=yes",
				"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + l.KnownHosts(), e.User + "@" + e.Host}
			argv = append(argv, args...)
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	cmd.Flags().SetInterspersed(false) // SSH-ARGS are ssh's
	return cmd
}
