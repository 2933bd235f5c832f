package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/labctl/labctl/provision"
)

func init() {
	register("exec", "run a command at a nesting level: exec [--level host|box1|n1] -- CMD", runExec)
}

func runExec(ctx context.Context, args []string) error {
	fs := newFlags("exec", "[--level host|CONTAINER] [--sudo] -- CMD [ARG...]",
		"Runs CMD over the lab's pinned SSH connection: on the VM as the lab user (--sudo: as root),\n"+
			"or inside a container as its root (box1 through lxc-attach, n1 through box1). The exit code\n"+
			"is CMD's. A single CMD word with spaces is run by sh -c; several are quoted one by one.")
	var sf specFlags
	var cf connFlags
	sf.add(fs)
	cf.add(fs)
	level := fs.String("level", "host", "host (the VM), or a container's name")
	sudo := fs.Bool("sudo", false, "on the VM, run as root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no command: labctl exec [--level L] -- CMD")
	}
	line := fs.Arg(0)
	if fs.NArg() > 1 {
		line = provision.Join(fs.Args()...)
	}
	s, err := openSession(ctx, &sf, &cf, nil, true)
	if err != nil {
		return err
	}
	defer s.Close()
	var t provision.Target = s.vm
	if *level != "host" && *level != "vm" {
		if s.lab.Spec.Container(*level) == nil {
			var names []string
			for _, c := range s.lab.Spec.Containers {
				names = append(names, c.Name)
			}
			return fmt.Errorf("--level %q: use host or one of %s", *level, strings.Join(names, ", "))
		}
		f, err := provision.GatherFacts(ctx, s.vm, s.lab.Spec.User)
		if err != nil {
			return err
		}
		t = provision.Targets(s.lab.Spec, s.vm, f)[*level]
	}
	cmd := provision.Cmd{Line: line, Sudo: *sudo, Stdout: os.Stdout, Stderr: os.Stderr}
	// Standard input is passed on when it is a pipe or a file; a terminal is not (the SSH
	// session would wait for its end-of-file): use `labctl ssh` to work interactively.
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
		cmd.Stdin = os.Stdin
	}
	r, err := t.Run(ctx, cmd)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return exitError{code: r.ExitCode}
	}
	return nil
}
