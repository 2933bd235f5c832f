package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/spec"
)

// source is the lab the global flags name (spec.Source: -f, --preset, ./lab.yaml, the default
// preset; --libvirt in place of its libvirt setting), in the current directory.
func (g *globals) source() spec.Source {
	return spec.Source{File: g.file, Preset: g.preset, Libvirt: g.libvirt}
}

// load returns the spec the global flags name.
func (g *globals) load() (*spec.Spec, error) { return g.source().Resolve() }

// openLab opens the lab the global flags name.
func (g *globals) openLab() (*lab.Lab, error) { return lab.Open(g.source()) }

// connectOptions are how this labctl reaches a lab's levels: through the lab's agent, which
// is this binary, with every command logged to tmp/<lab>/logs/provision.log (log).
func (g *globals) connectOptions(log io.Writer) lab.ConnectOptions {
	exe, err := os.Executable()
	if err != nil {
		exe = ""
	}
	return lab.ConnectOptions{Agent: exe, Insecure: g.insecure, Log: log, BootTimeout: 3 * time.Minute}
}

// connected opens the lab, its provision log and a connection to it, for a verb that only
// reads or runs commands (no lock); close it with the returned function.
func (g *globals) connected(ctx context.Context) (*lab.Lab, *lab.Conn, func(), error) {
	l, err := g.openLab()
	if err != nil {
		return nil, nil, nil, err
	}
	log, err := l.OpenLog(labdir.ProvisionLog)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := l.Connect(ctx, g.connectOptions(log))
	if err != nil {
		log.Close()
		return nil, nil, nil, err
	}
	return l, c, func() { c.Close(); log.Close() }, nil
}

// withLog runs fn with the lab's provision log open (the verbs that provision log there).
func withLog(l *lab.Lab, fn func(log io.Writer) error) error {
	log, err := l.OpenLog(labdir.ProvisionLog)
	if err != nil {
		return err
	}
	defer log.Close()
	return fn(log)
}

func fmtDur(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
