package lab

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/labctl/labctl/lab/vagrant"
)

// HaltTimeout bounds the wait for a clean shutdown the guest started itself.
const HaltTimeout = 3 * time.Minute

// Halt stops the lab's VM cleanly. A running libvirt VM the lab recorded is asked to power off
// from the inside (poweroff runs `systemctl poweroff` there) and watched in libvirt until it is
// off: the guest stops its containers and unmounts the data disk. `vagrant halt` is the way
// otherwise, and the fallback when the guest does not go off within HaltTimeout; it sends ACPI
// and, after its own 60 s, pulls the plug. It returns how the VM went off.
func Halt(ctx context.Context, l *Lab, v *vagrant.Driver, poweroff func(context.Context) error, out io.Writer) (string, error) {
	state, err := l.VMState(ctx, v)
	if err != nil {
		return "", err
	}
	st, _ := l.LoadState()
	if state != "running" || st.DomainUUID == "" || l.Spec.ProviderFor() != "libvirt" {
		return "vagrant halt", v.Halt(ctx)
	}
	if err := poweroff(ctx); err != nil {
		fmt.Fprintf(out, "could not ask the guest to power off (%v): vagrant halt\n", err)
		return "vagrant halt", v.Halt(ctx)
	}
	deadline := time.Now().Add(HaltTimeout)
	for time.Now().Before(deadline) {
		if state, err := l.VMState(ctx, v); err == nil && state == "shutoff" {
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
