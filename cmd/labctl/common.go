package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
)

// connFlags are the connection options shared by the verbs that reach into the lab.
type connFlags struct {
	insecure bool
}

func (cf *connFlags) add(fs *flag.FlagSet) {
	fs.BoolVar(&cf.insecure, "insecure-ignore-host-key", false, "do not pin or check the VM's SSH host key (throwaway VMs only)")
}

// session is an open lab: its VM driver, its SSH connection and its targets.
type session struct {
	lab     *lab.Lab
	vagrant *lab.Vagrant
	comm    *provision.Comm
	vm      *provision.VM
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

// openSession opens the lab's logs and Vagrant driver; connect also opens the SSH connection.
func openSession(ctx context.Context, sf *specFlags, cf *connFlags, progress io.Writer, connect bool) (*session, error) {
	l, err := sf.openLab()
	if err != nil {
		return nil, err
	}
	v, closeV, err := lab.NewVagrant(l, progress)
	if err != nil {
		return nil, err
	}
	s := &session{lab: l, vagrant: v, closers: []func() error{closeV}}
	s.log, err = os.OpenFile(l.Path("logs", "provision.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.closers = append(s.closers, s.log.Close)
	if connect {
		if err := s.connect(ctx, cf); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *session) connect(ctx context.Context, cf *connFlags) error {
	comm, err := provision.Connect(ctx, s.lab, s.vagrant, provision.ConnectOptions{
		InsecureIgnoreHostKey: cf != nil && cf.insecure, Log: s.log, BootTimeout: 3 * time.Minute})
	if err != nil {
		return err
	}
	s.comm = comm
	s.vm = &provision.VM{Conn: comm}
	return nil
}

func (s *session) provisioner(ctx context.Context, opts provision.Options) (*provision.Provisioner, error) {
	if opts.Log == nil {
		opts.Log = s.log
	}
	return provision.New(ctx, s.lab, s.vm, s.comm, opts)
}

func fmtDur(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
