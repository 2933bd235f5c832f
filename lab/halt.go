package lab

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/labctl/labctl/lab/action"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// HaltTimeout bounds the wait for a clean shutdown the guest started itself.
const HaltTimeout = 3 * time.Minute

// Halt stops the lab's VM cleanly, holding the lab's lock. Its agent ends first. A running VM
// whose state its provider reads (libvirt: a recorded domain) is asked to power off from the
// inside, its containers stopped first, deepest first (over SSH: an agent attached in box1
// would keep its systemd from halting until LXC's 60 s stop timeout), and watched until it is
// off: the guest unmounts the data disk. `vagrant halt` is the way otherwise, and the fallback
// when the guest does not go off within HaltTimeout; it sends ACPI and, after its own 60 s,
// pulls the plug. It returns how the VM went off.
func (l *Lab) Halt(ctx context.Context, out io.Writer, o ConnectOptions) (how string, err error) {
	err = l.locked(ctx, "halt", out, func(v *vagrant.Driver) error {
		r := &action.Runner{Verb: "halt", Out: out}
		return r.Run(ctx, []action.Action{
			{Name: "agent", Do: func(ctx context.Context) (*action.Undo, error) { _, err := l.StopAgent(ctx); return nil, err }},
			{Name: "power off", Log: l.Log(labdir.VagrantLog), Do: func(ctx context.Context) (*action.Undo, error) {
				how, err = l.powerOff(ctx, v, out, o)
				return nil, err
			}},
		})
	})
	return how, err
}

// powerOff is Halt's power-off phase.
func (l *Lab) powerOff(ctx context.Context, v *vagrant.Driver, out io.Writer, o ConnectOptions) (string, error) {
	p, err := l.provider()
	if err != nil {
		return "", err
	}
	state, direct, err := l.vmState(ctx, p, v)
	if err != nil {
		return "", err
	}
	if state != "running" || !direct {
		return "vagrant halt", v.Halt(ctx)
	}
	if err := l.poweroffInside(ctx, out, o); err != nil {
		fmt.Fprintf(out, "could not ask the guest to power off (%v): vagrant halt\n", err)
		return "vagrant halt", v.Halt(ctx)
	}
	deadline := time.Now().Add(HaltTimeout)
	for time.Now().Before(deadline) {
		if state, _, err := l.vmState(ctx, p, v); err == nil && state == "shutoff" {
			return "the guest's own poweroff", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "the guest did not power off within %s: vagrant halt\n", HaltTimeout)
	return "vagrant halt", v.Halt(ctx)
}

// poweroffInside stops the containers, deepest first, and starts the guest's poweroff, over an
// SSH connection of this process.
func (l *Lab) poweroffInside(ctx context.Context, out io.Writer, o ConnectOptions) error {
	o.Agent = ""
	return l.withProvisioner(ctx, o, provision.Options{}, func(c *Conn, p *provision.Provisioner) error {
		if err := p.StopContainers(ctx); err != nil {
			fmt.Fprintf(out, "%v: the guest's shutdown stops it\n", err)
		}
		_, err := remote.Must(ctx, c.VM(), remote.Cmd{Line: "systemctl poweroff --no-block", Sudo: true})
		return err
	})
}
