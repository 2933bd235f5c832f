package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision/remote"
)

// ConnectOptions say how to reach a lab's VM.
type ConnectOptions struct {
	// InsecureIgnoreHostKey skips host-key pinning (--insecure-ignore-host-key).
	InsecureIgnoreHostKey bool
	BootTimeout           time.Duration
	Log                   io.Writer
}

// Connect opens the one pinned SSH connection to the VM: at the endpoint the lab's state
// remembers, or, when it remembers none or it refuses the key, at the one `vagrant ssh-config`
// gives (then remembered).
func Connect(ctx context.Context, l *lab.Lab, v *vagrant.Driver, o ConnectOptions) (*remote.Comm, error) {
	if _, err := os.Stat(l.Path("Vagrantfile")); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s has no VM (no %s): bring it up with `labctl up`", l.Spec.Name, l.Path("Vagrantfile"))
	}
	st, err := l.LoadState()
	if err != nil {
		return nil, err
	}
	if e := st.SSH; e != nil {
		c, err := remote.Dial(ctx, o.config(l, *e))
		if !errors.Is(err, remote.ErrAuth) {
			return c, err
		}
		fmt.Fprintf(o.log(), "# the remembered SSH endpoint refused the key (%v): asking Vagrant\n", err)
	}
	out, err := v.SSHConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w\nis the VM up? run `labctl up` (or `labctl status`)", err)
	}
	entries, err := vagrant.ParseSSHConfig(out)
	if err != nil {
		return nil, err
	}
	e := lab.SSHEndpoint{Host: entries[0].HostName, Port: entries[0].Port, User: entries[0].User, IdentityFiles: entries[0].IdentityFiles}
	c, err := remote.Dial(ctx, o.config(l, e))
	if err != nil {
		return nil, err
	}
	if st, err := l.LoadState(); err == nil {
		st.SSH = &e
		if err := l.SaveState(st); err != nil {
			fmt.Fprintf(o.log(), "# could not remember the SSH endpoint: %v\n", err)
		}
	}
	return c, nil
}

func (o ConnectOptions) config(l *lab.Lab, e lab.SSHEndpoint) remote.SSHConfig {
	return remote.SSHConfig{
		Host: e.Host, Port: e.Port, User: e.User, IdentityFiles: e.IdentityFiles,
		KnownHosts: l.KnownHosts(), InsecureIgnoreHostKey: o.InsecureIgnoreHostKey,
		BootTimeout: o.BootTimeout, Log: o.Log,
	}
}

func (o ConnectOptions) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}
