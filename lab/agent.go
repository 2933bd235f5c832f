package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/provision/agent"
	"github.com/labctl/labctl/provision/remote"
)

// startAgent connects to the lab's agent, starting `bin agent run` with the flags that name
// this lab when none of bin's version runs; a bin that cannot be the agent (not built static)
// is agent.ErrNotStatic.
func (l *Lab) startAgent(ctx context.Context, bin string, insecure bool) (*agent.Client, error) {
	flags := l.Source.Args()
	if insecure {
		flags = append(flags, "--insecure-ignore-host-key")
	}
	return agent.Start(ctx, l.Path(labdir.AgentSock), bin, flags, l.Source.Dir(), l.Log(labdir.AgentLog))
}

// StopAgent asks the lab's agent to quit (before the VM halts, is reset or destroyed: its
// links do not survive that); it reports whether one was running.
func (l *Lab) StopAgent(ctx context.Context) (bool, error) {
	stopped, err := agent.Stop(ctx, l.Path(labdir.AgentSock))
	if err != nil {
		return stopped, fmt.Errorf("stop the lab's agent: %w (see %s)", err, l.Log(labdir.AgentLog))
	}
	return stopped, nil
}

// ServeAgent is the lab's agent on the host, in the foreground: one SSH connection to the VM
// (opened on first use), the VM's own agent at its end, the socket tmp/<lab>/agent.sock. It
// ends after idle without a command, when asked to quit, or with ctx. Only one runs per lab:
// a second one says so and returns.
func (l *Lab) ServeAgent(ctx context.Context, insecure bool, idle time.Duration, out io.Writer) error {
	lk, err := host.TryLock(l.Path(labdir.AgentLock), "agent")
	var busy *host.BusyError
	if errors.As(err, &busy) {
		fmt.Fprintf(out, "the agent of lab %s runs already (pid %d)\n", l.Spec.Name, busy.PID)
		return nil
	}
	if err != nil {
		return err
	}
	defer lk.Unlock()
	bin, version, err := host.Self()
	if err != nil {
		return err
	}
	if err := agent.CheckStatic(bytes.NewReader(bin)); err != nil {
		return err
	}
	logf, err := l.OpenLog(labdir.AgentLog)
	if err != nil {
		return err
	}
	defer logf.Close()
	// The VM's SSH is waited for as long as a boot may take (the guest may be rebooting) while
	// the VM runs; an off VM ends the wait at once (sshConfig's Alive).
	ssh := &agentSSH{lab: l, o: ConnectOptions{Insecure: insecure, Log: logf, BootTimeout: time.Duration(l.Spec.BootTimeout) * time.Second}}
	defer ssh.close()
	s := &agent.Server{Version: version, Log: logf, Spawn: ssh.spawn(version),
		Installer: &agent.Installer{Binary: bin, Version: version, Root: ssh.root}}
	sock := l.Path(labdir.AgentSock)
	fmt.Fprintf(logf, "# agent of lab %s (pid %d, version %.16s) listening on %s\n", l.Spec.Name, os.Getpid(), version, sock)
	return agent.ServeSocket(ctx, s, sock, idle)
}

// agentSSH is the host agent's one SSH connection to the VM, opened on first use.
type agentSSH struct {
	lab  *Lab
	o    ConnectOptions
	mu   sync.Mutex
	comm *remote.Comm
}

func (a *agentSSH) dial(ctx context.Context) (*remote.Comm, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.comm == nil {
		c, err := a.lab.DialSSH(ctx, a.o)
		if err != nil {
			return nil, err
		}
		a.comm = c
	}
	return a.comm, nil
}

func (a *agentSSH) close() {
	if a.comm != nil {
		a.comm.Close()
	}
}

// spawn starts the VM's agent at the end of the SSH connection: the first hop of every request.
func (a *agentSSH) spawn(version string) func(context.Context, agent.Hop) (*agent.Client, error) {
	return func(ctx context.Context, hop agent.Hop) (*agent.Client, error) {
		if hop != agent.VMHop {
			return nil, fmt.Errorf("the lab's agent reaches the VM first, not %q", hop.Name)
		}
		c, err := a.dial(ctx)
		if err != nil {
			return nil, err
		}
		st, err := c.Start(ctx, agent.ServeLine(agent.DefaultDir, version), a.o.Log)
		if err != nil {
			return nil, err
		}
		return agent.Link("vm", agent.Proc{Stdin: st.Stdin, Stdout: st.Stdout, Wait: st.Wait, Stop: func() { st.Close() }})
	}
}

// root runs an install line as root on the VM over SSH (the agent's binary, on first use).
func (a *agentSSH) root(ctx context.Context, line string, r io.Reader) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	_, err = remote.Must(ctx, &remote.SSHVM{Conn: c}, remote.Cmd{Line: line, Sudo: true, Stdin: r})
	return err
}
