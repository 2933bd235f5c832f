package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Hop is one level below the agent a request reaches: the command line prefix its parent runs
// to enter it (remote.Container.Enter: the line to run inside follows, quoted), as root or not.
type Hop struct {
	Name  string `json:"name"`
	Enter string `json:"enter,omitempty"`
	Sudo  bool   `json:"sudo,omitempty"`
}

// Request is one command: run Line by `sh -c` at the level Path leads to from the agent that
// gets it (empty: that agent's own level), as root when Sudo (on the VM: `sudo -n`).
type Request struct {
	Path []Hop  `json:"path,omitempty"`
	Line string `json:"line"`
	Sudo bool   `json:"sudo,omitempty"`
	// Cache lets a forwarding agent answer from an earlier answer (see cache.go).
	Cache bool `json:"cache,omitempty"`
	// Reads says the command only reads (a provisioning check): a root command so marked
	// keeps the answers kept for its level (see cache.go).
	Reads bool `json:"reads,omitempty"`
	// Control is a request to the agent itself instead of a command: "quit".
	Control string `json:"control,omitempty"`
}

// Exit ends a stream: the command's exit code, or why it could not run.
type Exit struct {
	Code int `json:"code"`
	// Err says why the command did not run, or did not run to its end (the code is then -1).
	Err string `json:"err,omitempty"`
	// Missing names the level whose agent is not installed (its spawn exited with
	// exitMissing): the installer installs it and asks again.
	Missing string `json:"missing,omitempty"`
}

// exitMissing is the exit code of a spawn line that finds no agent binary.
const exitMissing = 97

// LinkError is a link to an agent that broke: the command's end is unknown.
type LinkError struct {
	Peer string
	Err  error
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("the link to the labctl agent of %s broke: %v", e.Peer, e.Err)
}

func (e *LinkError) Unwrap() error { return e.Err }

// Client opens streams on a link to an agent.
type Client struct {
	// Peer names the far side, for errors ("vm", "box1", "the lab's agent").
	Peer string
	// Version is the far agent's, from its hello.
	Version string
	l       *link
	mu      sync.Mutex
	next    uint32
	calls   map[uint32]*call
	dead    chan struct{}
	err     error
}

type call struct {
	stdout, stderr io.Writer
	exit           chan Exit
}

// NewClient reads the far agent's hello on r and starts reading its frames; w carries the
// client's frames, c (may be nil) ends the link.
func NewClient(peer string, r io.Reader, w io.Writer, c io.Closer) (*Client, error) {
	cl := &Client{Peer: peer, l: newLink(r, w, c), calls: map[uint32]*call{}, dead: make(chan struct{})}
	f, err := cl.l.recv()
	if err != nil {
		return nil, err
	}
	if f.typ != fHello {
		return nil, fmt.Errorf("%w (%s sent %q first)", errNotAgent, peer, f.typ)
	}
	cl.Version = string(f.payload)
	go cl.readLoop()
	return cl, nil
}

// Done is closed when the link has broken or was closed.
func (c *Client) Done() <-chan struct{} { return c.dead }

// Close ends the link; running commands get a LinkError.
func (c *Client) Close() error { return c.l.close() }

func (c *Client) readLoop() {
	var err error
	for {
		var f frame
		if f, err = c.l.recv(); err != nil {
			break
		}
		c.mu.Lock()
		k := c.calls[f.stream]
		if f.typ == fExit {
			delete(c.calls, f.stream)
		}
		c.mu.Unlock()
		if k == nil {
			continue
		}
		switch f.typ {
		case fStdout:
			_, _ = k.stdout.Write(f.payload)
		case fStderr:
			_, _ = k.stderr.Write(f.payload)
		case fExit:
			var e Exit
			if json.Unmarshal(f.payload, &e) != nil {
				e = Exit{Code: -1, Err: "unreadable exit frame"}
			}
			k.exit <- e
		}
	}
	c.mu.Lock()
	c.err = err
	c.calls = nil
	c.mu.Unlock()
	close(c.dead)
	c.l.close()
}

// Exec runs req on the far side and waits for its end. The error is for a broken link and for
// cancellation (the far side kills the command then); the command's own failure is in Exit.
func (c *Client) Exec(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) (Exit, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	k := &call{stdout: stdout, stderr: stderr, exit: make(chan Exit, 1)}
	c.mu.Lock()
	if c.calls == nil {
		err := c.err
		c.mu.Unlock()
		return Exit{Code: -1}, &LinkError{Peer: c.Peer, Err: err}
	}
	c.next++
	id := c.next
	c.calls[id] = k
	c.mu.Unlock()
	payload, _ := json.Marshal(req)
	if err := c.l.send(fOpen, id, payload); err != nil {
		return Exit{Code: -1}, &LinkError{Peer: c.Peer, Err: err}
	}
	go copyStdin(c.l, id, stdin)
	select {
	case e := <-k.exit:
		return e, nil
	case <-c.dead:
		return Exit{Code: -1}, &LinkError{Peer: c.Peer, Err: c.err}
	case <-ctx.Done():
		_ = c.l.send(fCancel, id, nil)
		select {
		case <-k.exit:
		case <-c.dead:
		case <-time.After(5 * time.Second):
		}
		return Exit{Code: -1}, ctx.Err()
	}
}

// ErrQuit is what a quit request ends with when the agent quit.
var ErrQuit = errors.New("the agent quit")

// Quit asks the agent to end (it ends its links and its children's).
func (c *Client) Quit(ctx context.Context) error {
	e, err := c.Exec(ctx, Request{Control: "quit"}, nil, nil, nil)
	var le *LinkError
	if errors.As(err, &le) {
		return nil // it went before it could answer
	}
	if err != nil {
		return err
	}
	if e.Err != "" {
		return errors.New(e.Err)
	}
	return nil
}
