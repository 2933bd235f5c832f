package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/labctl/labctl/provision"
)

func init() {
	register("status", "VM state, container states, kernel and LXC versions (--json)", runStatus)
}

// Status is what `labctl status --json` prints.
type Status struct {
	Lab        string            `json:"lab"`
	VM         string            `json:"vm"`
	Kernel     string            `json:"kernel,omitempty"`
	LXC        string            `json:"lxc,omitempty"`
	Containers map[string]string `json:"containers,omitempty"`
	Error      string            `json:"error,omitempty"`
}

func runStatus(ctx context.Context, args []string) error {
	fs := newFlags("status", "[-f lab.yaml | --preset NAME] [--json]", "Shows the VM's state and, when it runs, each container's state and the detected versions.")
	var sf specFlags
	var cf connFlags
	sf.add(fs)
	cf.add(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, &cf, nil, false)
	if err != nil {
		return err
	}
	defer s.Close()
	st := Status{Lab: s.lab.Spec.Name, Containers: map[string]string{}}
	if _, err := os.Stat(s.lab.Path("Vagrantfile")); err != nil {
		st.VM = "not_created"
	} else if st.VM, err = s.vagrant.Status(ctx); err != nil {
		st.VM, st.Error = "unknown", err.Error()
	}
	if st.VM == "running" {
		if err := s.connect(ctx, &cf); err != nil {
			st.Error = err.Error()
		} else if p, err := s.provisioner(ctx, provision.Options{}); err != nil {
			st.Error = err.Error()
		} else {
			st.Kernel, st.LXC = p.Facts.Kernel, p.Facts.LXCVersion
			for _, c := range s.lab.Spec.Containers {
				state, err := p.State(ctx, c.Name)
				if err != nil {
					state = "unknown"
				}
				st.Containers[c.Name] = orDash(state)
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Printf("lab %s: VM %s\n", st.Lab, st.VM)
	if st.Kernel != "" {
		fmt.Printf("  kernel %s, LXC %s\n", st.Kernel, st.LXC)
	}
	for _, c := range s.lab.Spec.Containers {
		if v, ok := st.Containers[c.Name]; ok {
			fmt.Printf("  %-6s %s\n", c.Name, v)
		}
	}
	if st.Error != "" {
		fmt.Printf("  error: %s\n", st.Error)
	}
	return nil
}
