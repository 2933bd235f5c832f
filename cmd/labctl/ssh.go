package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision/remote"
	"github.com/spf13/cobra"
)

// levelShell is the interactive shell opened inside a container: its login bash where the
// image has one (labctl's), else its sh (busybox).
const levelShell = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi"

func sshCmd(g *globals) *cobra.Command {
	level := "host"
	cmd := &cobra.Command{
		Use:   "ssh [--level host|CONTAINER] [-- SSH-ARGS]",
		Short: "open an interactive shell on the VM, or in a container (host key checked against the pin)",
		Long: "Runs ssh to the VM with the lab's key and its pinned known_hosts (StrictHostKeyChecking yes);\n" +
			"SSH-ARGS after -- are ssh's (a command to run, for one).\n" +
			"--level CONTAINER opens a shell inside that container instead (box1 through lxc-attach, n1\n" +
			"through box1), as its root, with a terminal.",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return sshInto(cmd, g, level, args) },
	}
	cmd.Flags().StringVar(&level, "level", "host", "host (the VM), or a container's name")
	cmd.Flags().SetInterspersed(false) // SSH-ARGS are ssh's
	return cmd
}

// sshInto replaces labctl with ssh to the lab's VM: a shell there, or at level (a container).
func sshInto(cmd *cobra.Command, g *globals, level string, args []string) error {
	if level != "host" && len(args) > 0 {
		return usageError{fmt.Errorf("--level %s opens a shell there and takes no SSH-ARGS: run a command at a level with labctl exec --level %s -- CMD", level, level)}
	}
	ctx := cmd.Context()
	var e lab.SSHEndpoint
	var knownHosts, line string
	var sudo bool
	err := g.withConn(ctx, func(l *lab.Lab, c *lab.Conn) error { // connecting pins the key on first use
		var err error
		if level != "host" {
			t, err := c.Target(ctx, level)
			if err != nil {
				return fmt.Errorf("--level: %w", err)
			}
			line, sudo = remote.Line(t, levelShell)
		}
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
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts}
	if line == "" {
		argv = append(argv, e.User+"@"+e.Host)
		return syscall.Exec(bin, append(argv, args...), os.Environ())
	}
	if sudo {
		line = "sudo -n sh -c " + remote.Quote(line)
	}
	argv = append(argv, "-t", e.User+"@"+e.Host, line)
	return syscall.Exec(bin, argv, os.Environ())
}
