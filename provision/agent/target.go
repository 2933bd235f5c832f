package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	labhost "github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/provision/remote"
)

// VMHop is the first hop of every request to a lab's agent: its VM.
var VMHop = Hop{Name: "vm"}

// VMTarget is the lab's VM as a target reached through the lab's agent; its containers (the
// remote.Container targets built on it) are reached through their own agents, so a command at
// any level is one message. Commands and their output go to Log, as over SSH.
type VMTarget struct {
	Client *Client
	Log    io.Writer
	// Redial, when set, reaches the lab's agent again (starting it) after the link to it
	// broke: the agent was killed or quit under a command. A check (a read with no streams of
	// the caller's) is asked again through the new link; another command's end is unknown, so
	// its error stands, and the next command goes through the new link.
	Redial func(ctx context.Context) (*Client, error)
	mu     sync.Mutex
}

// Name is "vm".
func (v *VMTarget) Name() string { return "vm" }

// Level is host.
func (v *VMTarget) Level() remote.Level { return remote.LevelHost }

// Run runs c on the VM, as the lab user (root with Sudo).
func (v *VMTarget) Run(ctx context.Context, c remote.Cmd) (remote.Result, error) {
	return v.exec(ctx, []Hop{VMHop}, "vm", c)
}

// RunIn runs c as root in the last container of chain.
func (v *VMTarget) RunIn(ctx context.Context, chain []*remote.Container, c remote.Cmd) (remote.Result, error) {
	path := []Hop{VMHop}
	for _, k := range chain {
		path = append(path, Hop{Name: k.Name(), Enter: k.Enter(), Sudo: !k.AsUser})
	}
	c.Sudo = false
	return v.exec(ctx, path, chain[len(chain)-1].Name(), c)
}

func (v *VMTarget) exec(ctx context.Context, path []Hop, where string, c remote.Cmd) (remote.Result, error) {
	log := v.Log
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "$ [%s] %s\n", where, c.Line)
	cl := v.client()
	r, e, err := v.send(ctx, cl, path, c, log)
	var broke *LinkError
	if errors.As(err, &broke) && v.Redial != nil && isDone(cl) {
		next, rerr := v.redial(ctx, cl)
		switch {
		case rerr != nil:
			err = fmt.Errorf("%w; reaching the lab's agent again failed: %v", err, rerr)
		case remote.OnlyReads(ctx) && c.Stdin == nil && c.Stdout == nil && c.Stderr == nil:
			fmt.Fprintf(log, "# the link to the lab's agent broke (%v): asked again through a new one\n", broke.Err)
			r, e, err = v.send(ctx, next, path, c, log)
		}
	}
	if err != nil {
		return r, fmt.Errorf("`%s` in %s: %w", c.Line, where, err)
	}
	if e.Err != "" {
		r.ExitCode = -1
		return r, fmt.Errorf("`%s` in %s: %s", c.Line, where, e.Err)
	}
	return r, nil
}

// send runs c through the client cl.
func (v *VMTarget) send(ctx context.Context, cl *Client, path []Hop, c remote.Cmd, log io.Writer) (remote.Result, Exit, error) {
	var stdout, stderr remote.Kept
	out := io.MultiWriter(append([]io.Writer{&stdout, log}, nonNil(c.Stdout)...)...)
	errw := io.MultiWriter(append([]io.Writer{&stderr, log}, nonNil(c.Stderr)...)...)
	e, err := cl.Exec(ctx, Request{Path: path, Line: c.Line, Sudo: c.Sudo, Cache: c.Cache, Reads: remote.OnlyReads(ctx)}, c.Stdin, out, errw)
	return remote.Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: e.Code}, e, err
}

func (v *VMTarget) client() *Client {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.Client
}

// redial replaces the broken client old with a new one, once: commands that saw the same link
// break at once share the new client.
func (v *VMTarget) redial(ctx context.Context, old *Client) (*Client, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.Client != old {
		return v.Client, nil
	}
	next, err := v.Redial(ctx)
	if err != nil {
		return nil, err
	}
	v.Client = next
	return next, nil
}

func isDone(c *Client) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

func nonNil(w io.Writer) []io.Writer {
	if w == nil {
		return nil
	}
	return []io.Writer{w}
}

// Dial connects to the lab agent listening on sock.
func Dial(ctx context.Context, sock string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	c, err := NewClient("the lab's agent", conn, conn, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Start connects to the lab agent on sock, starting `bin agent run` with the flags that name
// the lab (run in dir, its output appended to logPath) when none of bin's version listens
// there. A bin that cannot be the agent is ErrNotStatic.
func Start(ctx context.Context, sock, bin string, flags []string, dir, logPath string) (*Client, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if err := CheckStatic(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	sum := sha256.Sum256(data)
	start := exec.Command(bin, append([]string{"agent", "run"}, flags...)...)
	start.Dir = dir
	start.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	f, err := labhost.OpenAppend(logPath, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start.Stdout, start.Stderr = f, f
	return Ensure(ctx, sock, hex.EncodeToString(sum[:]), start, logPath, 30*time.Second)
}

// Stop asks the lab agent on sock to quit and waits for it to remove its socket; it reports
// whether one was running.
func Stop(ctx context.Context, sock string) (bool, error) {
	c, err := Dial(ctx, sock)
	if err != nil {
		return false, nil
	}
	return true, quit(ctx, c, sock)
}

// quit asks the agent of client c to quit, and waits up to 5 s for it to remove its socket.
func quit(ctx context.Context, c *Client, sock string) error {
	defer c.Close()
	if err := c.Quit(ctx); err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// Ensure connects to the lab agent on sock, starting it with start when none listens (or when
// the one that listens is another version: it is asked to quit first). It waits up to wait for
// the new agent; one that ends before it listens is an error with the end of its log.
func Ensure(ctx context.Context, sock, version string, start *exec.Cmd, logFile string, wait time.Duration) (*Client, error) {
	if c, err := Dial(ctx, sock); err == nil {
		if c.Version == version {
			return c, nil
		}
		_ = quit(ctx, c, sock)
	}
	if err := start.Start(); err != nil {
		return nil, fmt.Errorf("start the lab's agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- start.Wait() }()
	deadline := time.After(wait)
	for {
		if c, err := Dial(ctx, sock); err == nil {
			return c, nil
		}
		select {
		case err := <-exited:
			// It ended: another agent may have won the race to start (then it listens).
			if c, derr := Dial(ctx, sock); derr == nil {
				return c, nil
			}
			return nil, fmt.Errorf("the lab's agent ended before it listened (%v): %s\nsee %s", err, labhost.TailFile(logFile, 5), logFile)
		case <-deadline:
			return nil, fmt.Errorf("the lab's agent did not listen on %s within %s: see %s", sock, wait, logFile)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
