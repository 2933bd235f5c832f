package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/spec"
)

// stateDirAbs is --state-dir made absolute (the lab's agent runs elsewhere), "" when not given.
func (g *globals) stateDirAbs() string {
	if g.stateDir == "" {
		return ""
	}
	if abs, err := filepath.Abs(g.stateDir); err == nil {
		return abs
	}
	return g.stateDir
}

// source is the lab the global flags name (spec.Source: -f, --preset, ./lab.yaml, the default
// preset; --libvirt in place of its libvirt setting), in the current directory.
func (g *globals) source() spec.Source {
	return spec.Source{File: g.file, Preset: g.preset, Libvirt: g.libvirt, StateDir: g.stateDirAbs()}
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

// withConn runs fn with the lab the global flags name and a connection to it, for a verb
// that only reads or runs commands (no lock); the commands go to the provision log.
func (g *globals) withConn(ctx context.Context, fn func(l *lab.Lab, c *lab.Conn) error) error {
	return g.withLab(func(l *lab.Lab, log io.Writer) error {
		c, err := l.Connect(ctx, g.connectOptions(log))
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(l, c)
	})
}

// withLab opens the lab the global flags name and its provision log (where the commands of
// a connection go), and runs fn with them.
func (g *globals) withLab(fn func(l *lab.Lab, log io.Writer) error) error {
	l, err := g.openLab()
	if err != nil {
		return err
	}
	log, err := l.OpenLog(labdir.ProvisionLog)
	if err != nil {
		return err
	}
	defer log.Close()
	return fn(l, log)
}

func fmtDur(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
