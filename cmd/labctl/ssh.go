package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/labctl/labctl/provision"
)

func init() {
	register("ssh", "open an interactive shell on the VM (host key checked against the pin)", runSSH)
}

func runSSH(ctx context.Context, args []string) error {
	fs := newFlags("ssh", "[-f lab.yaml | --preset NAME] [-- SSH-ARGS]",
		"Runs ssh to the VM with the lab's key and its pinned known_hosts (StrictHostKeyChecking yes).")
	var sf specFlags
	sf.add(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, nil, nil, true) // connecting pins the key on first use
	if err != nil {
		return err
	}
	out, err := s.vagrant.SSHConfig(ctx)
	s.Close()
	if err != nil {
		return err
	}
	entries, err := provision.ParseSSHConfig(out)
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
	argv = append(argv, fs.Args()...)
	return syscall.Exec(bin, argv, os.Environ())
}
