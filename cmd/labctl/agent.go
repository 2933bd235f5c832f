package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/provision/agent"
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
	root.AddCommand(agentStopCmd(g), agentServeCmd(), agentRunCmd(g))
	return root
}

func agentStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "end the lab's agent (the next command starts it again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLab()
			if err != nil {
				return err
			}
			stopped, err := l.StopAgent(cmd.Context())
			if err == nil && stopped {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s: agent stopped\n", l.Spec.Name)
			} else if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "lab %s: no agent runs\n", l.Spec.Name)
			}
			return err
		},
	}
}

func agentServeCmd() *cobra.Command {
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
	return serve
}

func agentRunCmd(g *globals) *cobra.Command {
	var idle time.Duration
	run := &cobra.Command{
		Use:    "run",
		Short:  "(on the host) the lab's agent, in the foreground",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.openLab()
			if err != nil {
				return err
			}
			return l.ServeAgent(cmd.Context(), g.insecure, idle, cmd.OutOrStdout())
		},
	}
	run.Flags().DurationVar(&idle, "idle", agent.DefaultIdle, "end after this long without a command")
	return run
}
