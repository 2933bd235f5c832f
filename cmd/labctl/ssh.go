package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/vagrant"
)

func sshCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh [-- SSH-ARGS]",
		Short: "open an interactive shell on the VM (host key checked against the pin)",
		Long:  "Runs ssh to the VM with the lab's key and its pinned known_hosts (StrictHostKeyChecking yes).",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.openSession(ctx, nil, true, "") // connecting pins the key on first use
			if err != nil {
				return err
			}
			out, err := s.vagrant.SSHConfig(ctx)
			s.Close()
			if err != nil {
				return err
			}
			entries, err := vagrant.ParseSSHConfig(out)
			if err != nil {
				return err
			}
			e := entries[0]
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("ssh is not installed: apt-get install openssh-client")
			}
			argv := []string{"ssh", "-p", strconv.Itoa(e.Port), "-i", e.IdentityFiles[0], "-o", "IdentitiesOnly=yes",
				"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + s.lab.KnownHosts(), e.User + "@" + e.HostName}
			argv = append(argv, args...)
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	cmd.Flags().SetInterspersed(false) // SSH-ARGS are ssh's
	return cmd
}
