package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/agent"
	"github.com/labctl/labctl/provision/remote"
)

// load returns the spec the global flags name (spec.Resolve: -f, --preset, ./lab.yaml, the
// default preset), with --libvirt in place of its libvirt setting.
func (g *globals) load() (*spec.Spec, error) {
	s, err := spec.Resolve(g.file, g.preset, ".")
	if err != nil || g.libvirt == "" {
		return s, err
	}
	s.Libvirt = g.libvirt
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("--libvirt %s: %w", g.libvirt, err)
	}
	return s, nil
}

// openLab loads the spec and its state directory under the current directory.
func (g *globals) openLab() (*lab.Lab, error) {
	s, err := g.load()
	if err != nil {
		return nil, err
	}
	return lab.Open(".", s)
}

// session is an open lab: its VM driver, its SSH connection and its targets.
type session struct {
	g       *globals
	lab     *lab.Lab
	vagrant *vagrant.Driver
	comm    *remote.Comm
	vm      remote.Target
	log     *os.File
	closers []func() error
}

func (s *session) Close() {
	if s.comm != nil {
		s.comm.Close()
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// openSession opens the lab's logs and Vagrant driver (Vagrant's progress on progress); with
// connect, also the SSH connection. A verb that changes the lab (up, provision, destroy, halt,
// snapshot) names itself in lock: it holds the lab's lock until Close, and a lab another
// labctl uses is refused at once.
func (g *globals) openSession(ctx context.Context, progress io.Writer, connect bool, lock string) (*session, error) {
	l, err := g.openLab()
	if err != nil {
		return nil, err
	}
	s := &session{g: g, lab: l}
	if lock != "" {
		unlock, err := l.Lock(lock)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, unlock)
		// The agent's links do not survive these: it ends first (the next command starts it).
		switch lock {
		case "halt", "destroy", "reset", "snapshot restore":
			if _, err := stopAgent(ctx, l); err != nil {
				s.Close()
				return nil, fmt.Errorf("stop the lab's agent: %w (see %s)", err, l.Path("logs", "agent.log"))
			}
		}
	}
	v, closeV, err := l.Vagrant(progress)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.vagrant = v
	s.closers = append(s.closers, closeV)
	s.log, err = l.OpenLog("provision.log")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.closers = append(s.closers, s.log.Close)
	if connect {
		if err := s.connect(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// connect reaches the lab's VM through the lab's agent (started on first use), or, when it
// cannot be used, over a pinned SSH connection of this process (the log says why).
func (s *session) connect(ctx context.Context) error {
	why := ""
	switch {
	case os.Getenv("LABCTL_AGENT") == "0":
		why = "LABCTL_AGENT=0"
	case s.g.file == "-":
		why = "the spec comes from standard input"
	default:
		c, err := dialAgent(ctx, s.g, s.lab)
		if errors.Is(err, agent.ErrNotStatic) {
			why = err.Error()
			break
		}
		if err != nil {
			return err
		}
		s.closers = append(s.closers, c.Close)
		s.vm = &agent.VM{Client: c, Log: s.log}
		return nil
	}
	fmt.Fprintf(s.log, "# no agent (%s): commands go over SSH\n", why)
	return s.connectSSH(ctx)
}

// connectSSH opens this process's own pinned SSH connection to the VM.
func (s *session) connectSSH(ctx context.Context) error {
	comm, err := provision.Connect(ctx, s.lab, s.vagrant, provision.ConnectOptions{
		InsecureIgnoreHostKey: s.g.insecure, Log: s.log, BootTimeout: 3 * time.Minute})
	if err != nil {
		return err
	}
	s.comm = comm
	if s.vm == nil {
		s.vm = &remote.VM{Conn: comm}
	}
	return nil
}

// UploadFile copies a file to the VM over this process's SSH connection, opened on first use
// (only a cold provision uploads: images).
func (s *session) UploadFile(ctx context.Context, local, dest string, mode os.FileMode, progress io.Writer) (remote.UploadResult, error) {
	if s.comm == nil {
		if err := s.connectSSH(ctx); err != nil {
			return remote.UploadResult{}, err
		}
	}
	return s.comm.UploadFile(ctx, local, dest, mode, progress)
}

// provisioner gathers the VM's facts; local images are built on the host (or taken from the
// cache), their progress on opts.Out.
func (s *session) provisioner(ctx context.Context, opts provision.Options) (*provision.Provisioner, error) {
	if opts.Log == nil {
		opts.Log = s.log
	}
	if opts.Ahead == 0 {
		opts.Ahead = provision.DefaultAhead
	}
	if opts.Image == nil {
		out := opts.Out
		if out == nil {
			out = io.Discard
		}
		opts.Image = build.LocalImages(s.lab.Spec, out, opts.Log)
	}
	return provision.New(ctx, s.lab, s.vm, s, opts)
}

func fmtDur(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
