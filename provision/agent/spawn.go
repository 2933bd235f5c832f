package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// child returns the live link to a level's agent, starting it when there is none. A spawn that
// finds no agent is an Exit naming the level as Missing.
func (s *Server) child(ctx context.Context, hop Hop) (*Client, Exit) {
	key := childKey(hop)
	for {
		s.mu.Lock()
		c := s.children[key]
		if c != nil {
			select {
			case <-c.Done():
			default:
				s.mu.Unlock()
				return c, Exit{}
			}
		}
		// One start per level at a time: concurrent first requests wait for it, then use the
		// agent it started (or, when it failed, try once more themselves).
		if w, ok := s.starting[key]; ok {
			s.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return nil, Exit{Code: -1, Err: ctx.Err().Error()}
			}
		}
		w := make(chan struct{})
		s.starting[key] = w
		s.mu.Unlock()
		c, e := s.spawnChild(ctx, hop)
		s.mu.Lock()
		delete(s.starting, key)
		close(w)
		s.mu.Unlock()
		return c, e
	}
}

// spawnChild starts the agent of a level below and keeps its link, replacing a link to an
// agent of that level that has ended.
func (s *Server) spawnChild(ctx context.Context, hop Hop) (*Client, Exit) {
	key := childKey(hop)
	spawn := s.Spawn
	if spawn == nil {
		spawn = s.LocalSpawn
	}
	c, err := spawn(ctx, hop)
	if err != nil {
		var m *MissingError
		if errors.As(err, &m) {
			return nil, Exit{Code: -1, Missing: hop.Name, Err: err.Error()}
		}
		return nil, Exit{Code: -1, Err: err.Error()}
	}
	s.mu.Lock()
	old := s.children[key]
	s.children[key] = c
	s.mu.Unlock()
	if old != nil {
		old.Close()
		s.forget() // the level started again (a reboot, a restart): what was kept may have changed
	}
	return c, Exit{}
}

// MissingError is a level without this version's agent.
type MissingError struct{ Level string }

func (e *MissingError) Error() string {
	return fmt.Sprintf("no labctl agent of this version in %s", e.Level)
}

// LocalSpawn starts a level's agent by running its Enter line here, with the agent's serve
// command inside; the agent must be installed there already (MissingError otherwise).
func (s *Server) LocalSpawn(ctx context.Context, hop Hop) (*Client, error) {
	argv := []string{"sh", "-c", hop.Enter + " " + quote(ServeLine(s.dir(), s.Version))}
	if hop.Sudo && os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n"}, argv...)
	}
	return startChild(hop.Name, argv, s.Log)
}

// startChild runs argv here as a child agent, its stdio the link; what it prints on stderr
// goes to log.
func startChild(name string, argv []string, log io.Writer) (*Client, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var early bytes.Buffer
	cmd.Stderr = io.MultiWriter(log, &limited{w: &early, n: 4096})
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return Link(name, Proc{Stdin: in, Stdout: out, Early: &early,
		Wait: func() (int, error) {
			err := cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode(), err
			}
			return -1, err
		},
		Stop: func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) },
	})
}

// Proc is a started child agent: a local process, or a command in an SSH session.
type Proc struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	// Early holds the start of what it printed on stderr (for the error when it fails).
	Early *bytes.Buffer
	// Wait waits for its end and returns its exit code (-1 when unknown).
	Wait func() (int, error)
	// Stop ends it.
	Stop func()
}

// Link reads a started child agent's hello and returns the client linked to it. A child that
// ends before its hello is an error: a MissingError when it found no agent binary.
func Link(name string, p Proc) (*Client, error) {
	c, err := NewClient(name, p.Stdout, p.Stdin, closerFunc(func() error {
		p.Stdin.Close()
		p.Stop()
		return nil
	}))
	if err != nil {
		p.Stdin.Close()
		code, werr := p.Wait()
		if code == exitMissing {
			return nil, &MissingError{Level: name}
		}
		early := ""
		if p.Early != nil {
			early = strings.TrimSpace(p.Early.String())
		}
		return nil, fmt.Errorf("start the labctl agent of %s: %v (exit: %v) %s", name, err, werr, early)
	}
	go func() {
		<-c.Done()
		_, _ = p.Wait()
	}()
	return c, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func childKey(hop Hop) string { return hop.Name + "\x00" + hop.Enter }
