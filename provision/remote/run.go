package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// RunOpts are the optional parts of a command.
type RunOpts struct {
	Stdin io.Reader
	// Stdout and Stderr receive the output as it comes, besides the log and the Result.
	Stdout, Stderr io.Writer
}

// Run runs a command line in the user's shell on the machine. A non-zero exit is reported in
// the Result with a nil error; the error is for transport failures and cancellation (the
// remote command is then signalled and the session closed).
func (c *Comm) Run(ctx context.Context, cmd string, opts RunOpts) (Result, error) {
	s, err := c.session(ctx)
	if err != nil {
		return Result{ExitCode: -1}, err
	}
	defer s.Close()
	var stdout, stderr Kept
	s.Stdout = multi(&stdout, c.cfg.Log, opts.Stdout)
	s.Stderr = multi(&stderr, c.cfg.Log, opts.Stderr)
	if opts.Stdin != nil {
		s.Stdin = opts.Stdin
	}
	fmt.Fprintf(c.cfg.Log, "$ %s\n", cmd)
	// The command runs under a shell whose $0 carries a marker, so that a cancelled command
	// can be found and killed with its children: sshd refuses signals for root sessions.
	marker := "labctl-run-" + randomID()
	if err := s.Start("exec sh -c " + Quote(cmd) + " " + marker); err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("start `%s` on %s: %w", cmd, c.cfg.Addr(), err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		c.killRemote(marker)
		s.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1},
			fmt.Errorf("`%s` on %s: %w", cmd, c.cfg.Addr(), ctx.Err())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
	default:
		// The connection was cut (or dropped after missed keepalives) while the command ran:
		// it may go on on the far side. Reconnect, wait for it to end there, and say so.
		res.ExitCode = -1
		c.dropCurrent()
		fmt.Fprintf(c.cfg.Log, "# the connection was cut while `%s` ran (%v): waiting for it to end\n", cmd, err)
		if werr := c.awaitEnd(ctx, marker); werr != nil {
			return res, fmt.Errorf("`%s` on %s: the connection was cut (%v), and whether the command ended is unknown: %w", cmd, c.cfg.Addr(), err, werr)
		}
		return res, &CutError{Cmd: cmd, Addr: c.cfg.Addr(), Err: err}
	}
	return res, nil
}

// CutError is a command whose connection was cut while it ran: labctl reconnected and waited
// until the command had ended on the far side, but its exit status and the rest of its output
// are lost. The step that ran it checks again what the command did.
type CutError struct {
	Cmd, Addr string
	Err       error
}

func (e *CutError) Error() string {
	return fmt.Sprintf("`%s` on %s: the connection was cut while it ran (%v); it has ended there, its exit status is unknown", e.Cmd, e.Addr, e.Err)
}

func (e *CutError) Unwrap() error { return e.Err }

// dropCurrent forgets the current client, so that the next command reconnects.
func (c *Comm) dropCurrent() {
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	if cl != nil {
		c.drop(cl)
	}
}

// awaitEnd reconnects and waits until no process of a marked command is left on the machine.
func (c *Comm) awaitEnd(ctx context.Context, marker string) error {
	id := strings.TrimPrefix(marker, "labctl-run-")
	probe := "pgrep -f 'labctl-run-[" + id[:1] + "]" + id[1:] + "' >/dev/null && echo running || echo ended"
	for {
		cl, err := c.Client(ctx)
		if err != nil {
			return err
		}
		if s, err := cl.NewSession(); err == nil {
			out, err := s.Output(probe)
			s.Close()
			if err == nil && strings.TrimSpace(string(out)) == "ended" {
				return nil
			}
		} else {
			c.drop(cl)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// killRemote kills, with their descendants, the processes of a marked command: each is
// stopped before its children are killed, so that a shell never runs its next command in the
// moment between (a killed `sleep` would let `sleep 3; touch f` touch f). It keeps
// looking for up to 3 s, since a command whose session was just opened may not have started
// yet. The pattern ("labctl-run-[x]yz") does not match the killing shell's own command line.
func (c *Comm) killRemote(marker string) {
	id := strings.TrimPrefix(marker, "labctl-run-")
	pattern := "labctl-run-[" + id[:1] + "]" + id[1:]
	script := `k(){ kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do k "$c"; done; kill -KILL "$1" 2>/dev/null; }
killed=0; i=0
while [ $i -lt 15 ]; do
  ps=$(pgrep -f '` + pattern + `')
  if [ -n "$ps" ]; then for p in $ps; do k "$p"; done; killed=1
  elif [ $killed = 1 ]; then exit 0; fi
  i=$((i+1)); sleep 0.2
done`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	if cl == nil {
		return
	}
	s, err := cl.NewSession()
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{})
	go func() {
		_ = s.Run("sudo -n sh -c " + Quote(script) + " 2>/dev/null || sh -c " + Quote(script))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func multi(ws ...io.Writer) io.Writer {
	var out []io.Writer
	for _, w := range ws {
		if w != nil {
			out = append(out, w)
		}
	}
	return io.MultiWriter(out...)
}

// Stream is a command started in an SSH session of its own, its stdin and stdout the caller's.
type Stream struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	s      *ssh.Session
}

// Wait waits for the command's end and returns its exit code (-1 when unknown).
func (st *Stream) Wait() (int, error) {
	err := st.s.Wait()
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus(), err
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// Close ends the session.
func (st *Stream) Close() error { return st.s.Close() }

// Start starts a long-running command (an agent) whose stdin and stdout the caller uses;
// its stderr goes to stderr and the log.
func (c *Comm) Start(ctx context.Context, cmd string, stderr io.Writer) (*Stream, error) {
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	in, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Stderr = multi(c.cfg.Log, stderr)
	fmt.Fprintf(c.cfg.Log, "$ %s (a stream)\n", cmd)
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, fmt.Errorf("start `%s` on %s: %w", cmd, c.cfg.Addr(), err)
	}
	return &Stream{Stdin: in, Stdout: out, s: s}, nil
}
