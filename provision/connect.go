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

// Connect reads the VM's `vagrant ssh-config` and opens the one pinned SSH connection to it.
func Connect(ctx context.Context, l *lab.Lab, v *vagrant.Driver, o ConnectOptions) (*remote.Comm, error) {
	if _, err := os.Stat(l.Path("Vagrantfile")); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s has no VM (no %s): bring it up with `labctl up`", l.Spec.Name, l.Path("Vagrantfile"))
	}
	out, err := v.SSHConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w\nis the VM up? run `labctl up` (or `labctl status`)", err)
	}
	entries, err := vagrant.ParseSSHConfig(out)
	if err != nil {
		return nil, err
	}
	e := entries[0]
	return remote.Dial(ctx, remote.SSHConfig{
		Host: e.HostName, Port: e.Port, User: e.User, IdentityFiles: e.IdentityFiles,
		KnownHosts: l.KnownHosts(), InsecureIgnoreHostKey: o.InsecureIgnoreHostKey,
		BootTimeout: o.BootTimeout, Log: o.Log,
	})
}
