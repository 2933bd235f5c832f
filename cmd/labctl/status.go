package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision"
)

// Status is what `labctl status --json` prints.
type Status struct {
	Lab string `json:"lab"`
	VM  string `json:"vm"`
	// Libvirt is the URI of the libvirt daemon of a libvirt lab's VM.
	Libvirt    string            `json:"libvirt,omitempty"`
	Kernel     string            `json:"kernel,omitempty"`
	LXC        string            `json:"lxc,omitempty"`
	Containers map[string]string `json:"containers,omitempty"`
	// Why says, for a container whose state is unknown, why it could not be read.
	Why   map[string]string `json:"why,omitempty"`
	Error string            `json:"error,omitempty"`
	// order is the spec's containers, in the order the text prints them.
	order []spec.Container
}

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "VM state, container states, kernel and LXC versions (--json)",
		Long:  "Shows the VM's state and, when it runs, each container's state and the detected versions.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := readStatus(cmd.Context(), g)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(out, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// readStatus reads the lab's status: the VM's state and, when it runs, its levels'.
func readStatus(ctx context.Context, g *globals) (Status, error) {
	l, err := g.openLab()
	if err != nil {
		return Status{}, err
	}
	st := Status{Lab: l.Spec.Name, Containers: map[string]string{}, Libvirt: l.Where()}
	if st.VM, err = l.VMState(ctx); err != nil {
		st.VM, st.Error = "unknown", err.Error()
	}
	if st.VM != "running" {
		return st, nil
	}
	err = withLog(l, func(log io.Writer) error {
		c, err := l.Connect(ctx, g.connectOptions(log))
		if err != nil {
			return err
		}
		defer c.Close()
		p, err := c.Provisioner(ctx, provision.Options{})
		if err != nil {
			return err
		}
		st.Kernel, st.LXC = p.Facts.Kernel, p.Facts.LXCVersion
		st.Containers, st.Why = containerStates(ctx, p)
		st.order = l.Spec.Containers
		return nil
	})
	if err != nil {
		st.Error = err.Error()
	}
	return st, nil
}

// printStatus prints the status for a person.
func printStatus(out io.Writer, st Status) {
	if st.Libvirt != "" {
		fmt.Fprintf(out, "lab %s: VM %s (%s)\n", st.Lab, st.VM, st.Libvirt)
	} else {
		fmt.Fprintf(out, "lab %s: VM %s\n", st.Lab, st.VM)
	}
	if st.Kernel != "" {
		fmt.Fprintf(out, "  kernel %s, LXC %s\n", st.Kernel, st.LXC)
	}
	for _, c := range st.order {
		if v, ok := st.Containers[c.Name]; ok {
			if why := st.Why[c.Name]; why != "" {
				v += " (" + why + ")"
			}
			fmt.Fprintf(out, "  %-6s %s\n", c.Name, v)
		}
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", st.Error)
	}
}

// containerStates reads each container's state in spec order (parents first). A container
// whose parent is not running cannot be asked: its state is unknown, and why says so.
func containerStates(ctx context.Context, p *provision.Provisioner) (states, why map[string]string) {
	states, why = map[string]string{}, map[string]string{}
	for _, c := range p.Spec.Containers {
		if c.Parent != "" && states[c.Parent] != "RUNNING" {
			states[c.Name] = "unknown"
			why[c.Name] = fmt.Sprintf("parent %s is %s", c.Parent, states[c.Parent])
			continue
		}
		state, err := p.State(ctx, c.Name)
		if err != nil {
			states[c.Name], why[c.Name] = "unknown", err.Error()
			continue
		}
		states[c.Name] = lab.StateOrAbsent(state)
	}
	return states, why
}
