package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision/remote"
)

func statusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "VM state, container states, kernel and LXC versions (--json)",
		Long:  "Shows the VM's state and, when it runs, each container's state and the detected versions.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withLab(func(l *lab.Lab, log io.Writer) error {
				st := l.Status(cmd.Context(), g.connectOptions(log))
				out := cmd.OutOrStdout()
				if asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(st)
				}
				printStatus(out, l, st)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printStatus prints the status for a person, the containers in the spec's order.
func printStatus(out io.Writer, l *lab.Lab, st lab.Status) {
	if st.Libvirt != "" {
		fmt.Fprintf(out, "lab %s: VM %s (%s)\n", st.Lab, st.VM, st.Libvirt)
	} else {
		fmt.Fprintf(out, "lab %s: VM %s\n", st.Lab, st.VM)
	}
	// What the guest answered is printed harmlessly: escape sequences as \x1b, not obeyed.
	if st.Kernel != "" {
		fmt.Fprintf(out, "  kernel %s, LXC %s\n", remote.Printable(st.Kernel), remote.Printable(st.LXC))
	}
	for _, c := range l.Spec.Containers {
		if v, ok := st.Containers[c.Name]; ok {
			if why := st.Why[c.Name]; why != "" {
				v += " (" + why + ")"
			}
			fmt.Fprintf(out, "  %-6s %s\n", c.Name, remote.Printable(v))
		}
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", remote.Printable(st.Error))
	}
}
