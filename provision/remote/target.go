package remote

import (
	"context"
	"io"
	"strings"
)

// Level is how deep a target is nested.
type Level string

// The nesting levels of a lab.
const (
	LevelHost   Level = "host"   // the VM
	LevelUnpriv Level = "unpriv" // an unprivileged container of the VM (box1)
	LevelNested Level = "nested" // a container inside it (n1)
)

// Cmd is a command line to run on a target.
type Cmd struct {
	// Line is a shell command line, built with Quote/Shf from any spec value.
	Line string
	// Sudo runs it as root on the VM (containers already run it as their root).
	Sudo  bool
	Stdin io.Reader
	// Stdout and Stderr, when set, receive the output as it comes.
	Stdout, Stderr io.Writer
	// Cache marks a read-only command whose answer changes only with the machine's boot or a
	// root command on it (the facts): a runner may answer it from its first answer.
	Cache bool
}

type readsKey struct{}

// Reading marks the commands run with the context it returns as reads only (a provisioning
// step's check): a runner that keeps answers about a machine (the lab's agent, the facts) may
// keep them across such a command even when it runs as root.
func Reading(ctx context.Context) context.Context { return context.WithValue(ctx, readsKey{}, true) }

// OnlyReads reports whether ctx was marked by Reading.
func OnlyReads(ctx context.Context) bool { v, _ := ctx.Value(readsKey{}).(bool); return v }

// Target is a place where commands run: the VM, a container, a nested container.
type Target interface {
	Name() string
	Level() Level
	// Run runs the command; a non-zero exit is in the Result, not the error.
	Run(ctx context.Context, c Cmd) (Result, error)
}

// Runner is what a VM target needs of a connection (Comm, or a fake in tests).
type Runner interface {
	Run(ctx context.Context, cmd string, opts RunOpts) (Result, error)
}

// SSHVM is the lab's VM over one SSH connection (a Runner), reached as the lab user; Sudo
// commands run through `sudo -n`.
type SSHVM struct {
	Conn Runner
}

// Name is "vm".
func (v *SSHVM) Name() string { return "vm" }

// Level is host.
func (v *SSHVM) Level() Level { return LevelHost }

// Run runs c on the VM.
func (v *SSHVM) Run(ctx context.Context, c Cmd) (Result, error) {
	line := "sh -c " + Quote(c.Line)
	if c.Sudo {
		line = "sudo -n " + line
	}
	return v.Conn.Run(ctx, line, RunOpts{Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr})
}

// Container is a container reached through its parent: the parent runs `lxc-attach` (or the
// wrapper that enters the delegated cgroup scope of an unprivileged container) with the
// command inside it. A nested container wraps twice. Make one with NewContainer.
type Container struct {
	name  string
	level Level
	// Parent is the target the container runs in: the VM, or its parent container.
	Parent Target
	// Attach is the attach command prefix run on the parent, without the container name,
	// e.g. ["lxc-attach"] or ["lxc-unpriv-attach"]; "-n NAME --clear-env -- sh -c CMD" follows.
	Attach []string
	// Env are the variables set for Attach on the parent (e.g. XDG_RUNTIME_DIR).
	Env []string
	// AsUser runs the attach on the VM as the lab user (an unprivileged container) rather than
	// as root.
	AsUser bool
}

// NewContainer is the container called name at level, in parent, entered with a plain
// `lxc-attach` as root until Attach, Env or AsUser say otherwise.
func NewContainer(name string, level Level, parent Target) *Container {
	return &Container{name: name, level: level, Parent: parent, Attach: []string{"lxc-attach"}}
}

// Name is the container's name.
func (c *Container) Name() string { return c.name }

// Level is unpriv or nested.
func (c *Container) Level() Level { return c.level }

// Wrap returns the parent's command line that runs line inside this container.
func (c *Container) Wrap(line string) string { return c.Enter() + " " + Quote(line) }

// Enter is the parent's command line that enters this container: the command line to run
// inside follows it, quoted.
func (c *Container) Enter() string {
	var parts []string
	if len(c.Env) > 0 {
		parts = append(parts, "env")
		for _, e := range c.Env {
			parts = append(parts, Quote(e))
		}
	}
	for _, a := range c.Attach {
		parts = append(parts, Quote(a))
	}
	parts = append(parts, "-n", Quote(c.name), "--clear-env",
		"--set-var", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--", "sh", "-c")
	return strings.Join(parts, " ")
}

// Direct is a VM target that reaches containers by itself (an agent in each level) instead of
// wrapping their commands into its own.
type Direct interface {
	// RunIn runs cmd in the last container of chain (outermost first), as its root.
	RunIn(ctx context.Context, chain []*Container, cmd Cmd) (Result, error)
}

// Chain is the containers from the outermost one down to c, and the target above them all.
func (c *Container) Chain() ([]*Container, Target) {
	chain := []*Container{c}
	t := c.Parent
	for {
		p, ok := t.(*Container)
		if !ok {
			return chain, t
		}
		chain = append([]*Container{p}, chain...)
		t = p.Parent
	}
}

// Line is the command line that runs line inside t, to be run on the VM (as root when sudo):
// line itself for the VM, else wrapped in each container's attach, the outermost last. It is
// how a command that needs the caller's terminal (an interactive shell) reaches a level.
func Line(t Target, line string) (wrapped string, sudo bool) {
	c, ok := t.(*Container)
	if !ok {
		return line, false
	}
	chain, _ := c.Chain()
	for i := len(chain) - 1; i >= 0; i-- {
		line = chain[i].Wrap(line)
	}
	return line, !chain[0].AsUser
}

// Run runs cmd inside the container, as its root.
func (c *Container) Run(ctx context.Context, cmd Cmd) (Result, error) {
	chain, top := c.Chain()
	if d, ok := top.(Direct); ok {
		return d.RunIn(ctx, chain, cmd)
	}
	line, sudo := Line(c, cmd.Line)
	return top.Run(ctx, Cmd{Line: line, Sudo: sudo, Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr})
}

// Must runs cmd and turns a non-zero exit into a *RunError.
func Must(ctx context.Context, t Target, cmd Cmd) (Result, error) {
	r, err := t.Run(ctx, cmd)
	if err != nil {
		return r, err
	}
	if !r.OK() {
		return r, &RunError{Target: t.Name(), Cmd: cmd.Line, Result: r}
	}
	return r, nil
}

// Sh runs a command line on t and returns its trimmed stdout, failing on a non-zero exit.
func Sh(ctx context.Context, t Target, sudo bool, line string) (string, error) {
	r, err := Must(ctx, t, Cmd{Line: line, Sudo: sudo})
	return strings.TrimSpace(r.Stdout), err
}
