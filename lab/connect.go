package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/agent"
	"github.com/labctl/labctl/provision/remote"
)

// ConnectOptions say how this process reaches the lab's levels.
type ConnectOptions struct {
	// Agent is the labctl binary the lab's agent runs from (started on first use, then
	// shared by every command); "" reaches the VM over an SSH connection of this process, as
	// does LABCTL_AGENT=0.
	Agent string
	// Insecure skips host-key pinning (--insecure-ignore-host-key).
	Insecure bool
	// Log receives every command and its output; nil discards them.
	Log io.Writer
	// BootTimeout bounds the wait for the VM's sshd (0: remote's default).
	BootTimeout time.Duration
}

func (o ConnectOptions) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Conn is the one way into a running lab: it hands out the lab's levels as targets (the VM
// and every container of the spec), through the lab's agent or over SSH, uploads files to the
// VM over SSH (opened on first use), and makes the lab's provisioner. The CLI, e2e/labtest
// and the suite all reach a lab through it.
type Conn struct {
	lab     *Lab
	o       ConnectOptions
	vm      remote.Target
	mu      sync.Mutex
	comm    *remote.Comm
	facts   *provision.Facts
	targets map[string]*remote.Container
	closers []func() error
}

// Connect reaches the lab's VM through the lab's agent (started on first use) or, when that
// cannot be used, over a pinned SSH connection of this process (the log says why).
func (l *Lab) Connect(ctx context.Context, o ConnectOptions) (*Conn, error) {
	c := &Conn{lab: l, o: o}
	why := ""
	switch {
	case o.Agent == "":
		why = "no agent binary given"
	case os.Getenv("LABCTL_AGENT") == "0":
		why = "LABCTL_AGENT=0"
	case l.Source.File == "-":
		why = "the spec comes from standard input"
	default:
		client, err := l.startAgent(ctx, o.Agent, o.Insecure)
		if errors.Is(err, agent.ErrNotStatic) {
			why = err.Error()
			break
		}
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, client.Close)
		c.vm = &agent.VMTarget{Client: client, Log: o.Log, Redial: func(ctx context.Context) (*agent.Client, error) {
			next, err := l.startAgent(ctx, o.Agent, o.Insecure)
			if err == nil {
				c.mu.Lock()
				c.closers = append(c.closers, next.Close)
				c.mu.Unlock()
			}
			return next, err
		}}
		return c, nil
	}
	fmt.Fprintf(o.log(), "# no agent (%s): commands go over SSH\n", why)
	if err := c.sshConn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// sshConn opens this process's own SSH connection to the VM, once.
func (c *Conn) sshConn(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.comm != nil {
		return nil
	}
	comm, err := c.lab.DialSSH(ctx, c.o)
	if err != nil {
		return err
	}
	c.comm = comm
	if c.vm == nil {
		c.vm = &remote.SSHVM{Conn: comm}
	}
	return nil
}

// VM is the lab's VM as a target: the lab user, root with Sudo.
func (c *Conn) VM() remote.Target { return c.vm }

// Facts are what the VM is (kernel, LXC, cgroup, AppArmor, ...), gathered once.
func (c *Conn) Facts(ctx context.Context) (provision.Facts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.facts != nil {
		return *c.facts, nil
	}
	f, err := provision.GatherFacts(ctx, c.vm, c.lab.Spec.User)
	if err != nil {
		return f, err
	}
	c.facts = &f
	c.targets = provision.Targets(c.lab.Spec, c.vm, f)
	return f, nil
}

// Host names the VM's level for Target.
const Host = "host"

// Target is where commands run at a level: Host (or "vm") for the VM, or a container's name.
func (c *Conn) Target(ctx context.Context, level string) (remote.Target, error) {
	if level == Host || level == "vm" {
		return c.vm, nil
	}
	if c.lab.Spec.Container(level) == nil {
		var names []string
		for _, k := range c.lab.Spec.Containers {
			names = append(names, k.Name)
		}
		return nil, fmt.Errorf("no level %q in lab %s: use %s or one of %s", level, c.lab.Spec.Name, Host, strings.Join(names, ", "))
	}
	if _, err := c.Facts(ctx); err != nil {
		return nil, err
	}
	return c.targets[level], nil
}

// UploadFile copies a file to the VM, verified, over this process's SSH connection (opened on
// first use: only a cold provision uploads images).
func (c *Conn) UploadFile(ctx context.Context, local, dest string, mode os.FileMode, progress io.Writer) (remote.UploadResult, error) {
	if err := c.sshConn(ctx); err != nil {
		return remote.UploadResult{}, err
	}
	return c.comm.UploadFile(ctx, local, dest, mode, progress)
}

// Provisioner is the lab's provisioner on this connection: the containers' start logs are
// kept in the lab's logs, and local images are built on the host (or taken from the cache),
// their progress on opts.Out.
func (c *Conn) Provisioner(ctx context.Context, opts provision.Options) (*provision.Provisioner, error) {
	if opts.Log == nil {
		opts.Log = c.o.log()
	}
	if opts.LogDir == "" {
		opts.LogDir = c.lab.LogDir()
	}
	if opts.Image == nil {
		out := opts.Out
		if out == nil {
			out = io.Discard
		}
		opts.Image = build.LocalImages(c.lab.Spec, out, opts.Log)
	}
	p, err := provision.New(ctx, c.lab.Spec, c.vm, c, opts)
	if err == nil {
		c.mu.Lock()
		c.facts, c.targets = &p.Facts, provision.Targets(c.lab.Spec, c.vm, p.Facts)
		c.mu.Unlock()
	}
	return p, err
}

// withProvisioner runs fn with a connection to the lab and its provisioner (the VM's facts
// gathered), closing the connection after.
func (l *Lab) withProvisioner(ctx context.Context, o ConnectOptions, opts provision.Options, fn func(*Conn, *provision.Provisioner) error) error {
	c, err := l.Connect(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.Provisioner(ctx, opts)
	if err != nil {
		return err
	}
	return fn(c, p)
}

// Close ends the connection (the lab's agent stays for the next command).
func (c *Conn) Close() error {
	var errs []error
	if c.comm != nil {
		errs = append(errs, c.comm.Close())
	}
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// DialSSH opens a pinned SSH connection to the VM: at the endpoint the lab's state remembers,
// or, when it remembers none or it refuses the key, at the one `vagrant ssh-config` gives
// (then remembered).
func (l *Lab) DialSSH(ctx context.Context, o ConnectOptions) (*remote.Comm, error) {
	if ok, err := l.hasVagrantfile(); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("lab %s has no VM (no %s): bring it up with `labctl up`", l.Spec.Name, l.Path(labdir.Vagrantfile))
	}
	if e := l.State().SSH; e != nil {
		c, err := remote.Dial(ctx, l.sshConfig(o, *e))
		if !errors.Is(err, remote.ErrAuth) {
			return c, err
		}
		fmt.Fprintf(o.log(), "# the remembered SSH endpoint refused the key (%v): asking Vagrant\n", err)
	}
	e, err := l.vagrantSSH(ctx)
	if err != nil {
		return nil, err
	}
	c, err := remote.Dial(ctx, l.sshConfig(o, e))
	if err != nil {
		return nil, err
	}
	if err := l.rememberSSH(e); err != nil {
		fmt.Fprintf(o.log(), "# could not remember the SSH endpoint: %v\n", err)
	}
	return c, nil
}

// vagrantSSH is the VM's SSH endpoint as `vagrant ssh-config` gives it.
func (l *Lab) vagrantSSH(ctx context.Context) (SSHEndpoint, error) {
	v, closeV, err := l.Vagrant(nil)
	if err != nil {
		return SSHEndpoint{}, err
	}
	defer closeV()
	out, err := v.SSHConfig(ctx)
	if err != nil {
		return SSHEndpoint{}, fmt.Errorf("%w\nis the VM up? run `labctl up` (or `labctl status`)", err)
	}
	entries, err := vagrant.ParseSSHConfig(out)
	if err != nil {
		return SSHEndpoint{}, err
	}
	return SSHEndpoint{Host: entries[0].HostName, Port: entries[0].Port, User: entries[0].User, IdentityFiles: entries[0].IdentityFiles}, nil
}

// SSHEndpoint is where `labctl ssh` reaches the VM: the remembered endpoint, or Vagrant's.
func (l *Lab) SSHEndpoint(ctx context.Context) (SSHEndpoint, error) {
	if e := l.State().SSH; e != nil {
		return *e, nil
	}
	return l.vagrantSSH(ctx)
}

func (l *Lab) sshConfig(o ConnectOptions, e SSHEndpoint) remote.SSHConfig {
	return remote.SSHConfig{
		Host: e.Host, Port: e.Port, User: e.User, IdentityFiles: e.IdentityFiles,
		KnownHosts: l.KnownHosts(), InsecureIgnoreHostKey: o.Insecure,
		BootTimeout: o.BootTimeout, Log: o.Log, Alive: l.notOff,
	}
}

// notOff is nil unless the lab's VM is known to be off: a wait for its SSH goes on while it
// runs (booting, or rebooted from inside), and ends at once, saying so, when it is off.
func (l *Lab) notOff(ctx context.Context) error {
	st, err := l.VMState(ctx)
	switch {
	case err != nil:
		return nil // unknown: keep waiting
	case st == "shutoff" || st == "poweroff" || st == "aborted" || st == "not_created" || st == "crashed":
		return fmt.Errorf("the lab's VM is %s: `labctl up` starts it", st)
	}
	return nil
}
