package lab

import (
	"context"
	"fmt"

	"github.com/labctl/labctl/provision"
)

// Status is a lab's state as `labctl status` shows it (and prints with --json).
type Status struct {
	Lab string `json:"lab"`
	VM  string `json:"vm"`
	// Libvirt is the URI of the libvirt daemon of a libvirt lab's VM (the provider's Where).
	Libvirt    string            `json:"libvirt,omitempty"`
	Kernel     string            `json:"kernel,omitempty"`
	LXC        string            `json:"lxc,omitempty"`
	Containers map[string]string `json:"containers,omitempty"`
	// Why says, for a container whose state is unknown, why it could not be read.
	Why   map[string]string `json:"why,omitempty"`
	Error string            `json:"error,omitempty"`
}

// Status reads the lab's status: the VM's state and, when it runs, its versions and every
// container's state. What could not be read is in Error (the VM's state "unknown"), not an
// error: status always has something to say.
func (l *Lab) Status(ctx context.Context, o ConnectOptions) Status {
	st := Status{Lab: l.Spec.Name, Containers: map[string]string{}, Libvirt: l.Where()}
	var err error
	if st.VM, err = l.VMState(ctx); err != nil {
		st.VM, st.Error = "unknown", err.Error()
	}
	if st.VM != "running" {
		return st
	}
	err = l.withProvisioner(ctx, o, provision.Options{}, func(_ *Conn, p *provision.Provisioner) error {
		st.Kernel, st.LXC = p.Facts.Kernel, p.Facts.LXCVersion
		st.Containers, st.Why = containerStates(ctx, p)
		return nil
	})
	if err != nil {
		st.Error = err.Error()
	}
	return st
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
		states[c.Name] = StateOrAbsent(state)
	}
	return states, why
}
