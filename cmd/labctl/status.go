package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

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
}

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "VM state, container states, kernel and LXC versions (--json)",
		Long:  "Shows the VM's state and, when it runs, each container's state and the detected versions.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.openSession(ctx, nil, false, "")
			if err != nil {
				return err
			}
			defer s.Close()
			st := Status{Lab: s.lab.Spec.Name, Containers: map[string]string{}}
			if st.VM, err = s.lab.VMState(ctx, s.vagrant); err != nil {
				st.VM, st.Error = "unknown", err.Error()
			}
			if s.lab.Spec.ProviderFor() == "libvirt" {
				if virt, err := s.lab.Libvirt(); err == nil {
					st.Libvirt = virt.URI()
				}
			}
			if st.VM == "running" {
				if err := s.connect(ctx); err != nil {
					st.Error = err.Error()
				} else if p, err := s.provisioner(ctx, provision.Options{}); err != nil {
					st.Error = err.Error()
				} else {
					st.Kernel, st.LXC = p.Facts.Kernel, p.Facts.LXCVersion
					st.Containers, st.Why = containerStates(ctx, p)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			if st.Libvirt != "" {
				fmt.Fprintf(out, "lab %s: VM %s (%s)\n", st.Lab, st.VM, st.Libvirt)
			} else {
				fmt.Fprintf(out, "lab %s: VM %s\n", st.Lab, st.VM)
			}
			if st.Kernel != "" {
				fmt.Fprintf(out, "  kernel %s, LXC %s\n", st.Kernel, st.LXC)
			}
			for _, c := range s.lab.Spec.Containers {
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
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// stateOrAbsent names the state of a container State found no trace of ("") as absent.
func stateOrAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
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
		states[c.Name] = stateOrAbsent(state)
	}
	return states, why
}
