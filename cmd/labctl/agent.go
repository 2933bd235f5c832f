package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/agent"
	"github.com/labctl/labctl/provision/remote"
)

func agentCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "agent stop",
		Short: "the lab's agent, which keeps every level one message away (agent stop)",
		Long: "labctl starts one agent per lab on first use: a background labctl on the host that holds the\n" +
			"pinned SSH connection (socket tmp/<lab>/agent.sock, log tmp/<lab>/logs/agent.log), and a labctl\n" +
			"agent in the VM and in each container it reaches (the binary in /var/lib/labctl). It ends after\n" +
			"10 minutes without a command, and on halt, reset and destroy. `labctl agent stop` ends it now.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	stop := &cobra.Command{
		Use:   "stop",
		Short: "end the lab's agent (the next command starts it again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLab()
			if err != nil {
				return err
			}
			stopped, err := stopAgent(cmd.Context(), l)
			if err == nil && stopped {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s: agent stopped\n", l.Spec.Name)
			} else if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s: no agent runs\n", l.Spec.Name)
			}
			return err
		},
	}
	var expect, dir string
	serve := &cobra.Command{
		Use:    "serve --expect SHA256",
		Short:  "(in the guest) a level's agent on stdin/stdout",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			signal.Ignore(syscall.SIGHUP)
			return agent.ServeStdio(expect, dir, os.Stdin, os.Stdout, os.Stderr)
		},
	}
	serve.Flags().StringVar(&expect, "expect", "", "the sha256 this binary must have")
	serve.Flags().StringVar(&dir, "dir", agent.DefaultDir, "where the levels below keep the agent")
	var idle time.Duration
	run := &cobra.Command{
		Use:    "run",
		Short:  "(on the host) the lab's agent, in the foreground",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAgent(cmd.Context(), g, idle)
		},
	}
	run.Flags().DurationVar(&idle, "idle", agent.DefaultIdle, "end after this long without a command")
	root.AddCommand(stop, serve, run)
	return root
}

// runAgent is the host's agent of the lab: one SSH connection, the VM's agent at its end.
func runAgent(ctx context.Context, g *globals, idle time.Duration) error {
	l, err := g.openLab()
	if err != nil {
		return err
	}
	lk, err := host.TryLock(l.Path("agent.lock"), "agent")
	var busy *host.BusyError
	if errors.As(err, &busy) {
		fmt.Printf("the agent of lab %s runs already (pid %d)\n", l.Spec.Name, busy.PID)
		return nil
	}
	if err != nil {
		return err
	}
	defer lk.Unlock()
	bin, version, err := host.Self()
	if err != nil {
		return err
	}
	if err := agent.CheckStatic(bytes.NewReader(bin)); err != nil {
		return err
	}
	v, closeV, err := l.Vagrant(nil)
	if err != nil {
		return err
	}
	defer closeV()
	logf, err := l.OpenLog("agent.log")
	if err != nil {
		return err
	}
	defer logf.Close()
	var comm *remote.Comm
	dial := func(ctx context.Context) (*remote.Comm, error) {
		if comm == nil {
			c, err := provision.Connect(ctx, l, v, provision.ConnectOptions{
				InsecureIgnoreHostKey: g.insecure, Log: logf, BootTimeout: 30 * time.Second})
			if err != nil {
				return nil, err
			}
			comm = c
		}
		return comm, nil
	}
	defer func() {
		if comm != nil {
			comm.Close()
		}
	}()
	s := &agent.Server{Version: version, Log: logf,
		Spawn: func(ctx context.Context, hop agent.Hop) (*agent.Client, error) {
			if hop != agent.VMHop {
				return nil, fmt.Errorf("the lab's agent reaches the VM first, not %q", hop.Name)
			}
			c, err := dial(ctx)
			if err != nil {
				return nil, err
			}
			st, err := c.Start(ctx, agent.ServeLine(agent.DefaultDir, version), logf)
			if err != nil {
				return nil, err
			}
			return agent.Link("vm", agent.Proc{Stdin: st.Stdin, Stdout: st.Stdout, Wait: st.Wait, Stop: func() { st.Close() }})
		},
		Installer: &agent.Installer{Binary: bin, Version: version,
			Root: func(ctx context.Context, line string, r io.Reader) error {
				c, err := dial(ctx)
				if err != nil {
					return err
				}
				_, err = remote.Must(ctx, &remote.VM{Conn: c}, remote.Cmd{Line: line, Sudo: true, Stdin: r})
				return err
			}},
	}
	fmt.Fprintf(logf, "# agent of lab %s (pid %d, version %.16s) listening on %s\n", l.Spec.Name, os.Getpid(), version, agentSock(l))
	return agent.ServeSocket(ctx, s, agentSock(l), idle)
}

func agentSock(l *lab.Lab) string { return l.Path("agent.sock") }

// dialAgent connects to the lab's agent, starting it when none runs; a labctl that cannot be
// the agent (not built static) is agent.ErrNotStatic.
func dialAgent(ctx context.Context, g *globals, l *lab.Lab) (*agent.Client, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	flags := agent.LabFlags{File: g.file, Preset: g.preset, Insecure: g.insecure}
	return agent.Start(ctx, agentSock(l), exe, flags, ".", l.Path("logs", "agent.log"))
}

// stopAgent asks the lab's agent to quit (before the VM halts, is reset or destroyed).
func stopAgent(ctx context.Context, l *lab.Lab) (bool, error) {
	return agent.Stop(ctx, agentSock(l))
}
