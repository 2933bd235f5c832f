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

// Spawner starts the agent of a level below and returns a client linked to it.
type Spawner func(ctx context.Context, hop Hop) (*Client, error)

// Server answers requests on links: it runs a command at its own level, or passes it on to the
// agent of the level below (started on first use, kept while it lives).
type Server struct {
	// Version is this agent's (its binary's sha256); it is the first frame on every link.
	Version string
	// Local lets it run commands at its own level (false for the host's agent: the host is not
	// a level of the lab).
	Local bool
	// Spawn starts a level's agent (default: the hop's Enter line run here, see LocalSpawn).
	Spawn Spawner
	// Installer, when set, installs a missing agent below and the request is asked again.
	Installer *Installer
	// Log receives what the agents below print on stderr and the links' events.
	Log io.Writer
	// Dir is where every level keeps the agent binary (default DefaultDir).
	Dir string
	// RootHop, when set, is how this level's agent runs its Sudo commands: through one agent
	// of this level running as root (started by the first one, kept while it lives), instead
	// of a `sudo -n` per command, which costs a PAM session each (100-200 ms under emulation).
	// When that agent cannot be started, Sudo commands go through `sudo -n` as before.
	RootHop *Hop

	mu       sync.Mutex
	children map[string]*Client
	starting map[string]chan struct{} // levels whose agent is being started, closed when it is
	answers  map[string]answer        // kept answers of Cache requests (cache.go)
	noRoot   bool                     // the RootHop agent could not be started
	gen      int                      // counts forget calls
	active   int
	last     time.Time
	quit     chan struct{}
}

func (s *Server) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.children == nil {
		s.children = map[string]*Client{}
		s.starting = map[string]chan struct{}{}
		s.quit = make(chan struct{})
		s.last = time.Now()
	}
	if s.Log == nil {
		s.Log = io.Discard
	}
}

func (s *Server) dir() string {
	if s.Dir == "" {
		return DefaultDir
	}
	return s.Dir
}

// Quit is closed when a quit request came.
func (s *Server) Quit() <-chan struct{} { s.init(); return s.quit }

// Idle reports how long no command has run (0 while one runs).
func (s *Server) Idle() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active > 0 {
		return 0
	}
	return time.Since(s.last)
}

// Close ends the links to the agents below.
func (s *Server) Close() {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.children {
		c.Close()
		delete(s.children, k)
	}
}

// Serve answers the requests that come on one link until it ends.
func (s *Server) Serve(r io.Reader, w io.Writer) error {
	s.init()
	l := newLink(r, w, nil)
	if err := l.send(fHello, 0, []byte(s.Version)); err != nil {
		return err
	}
	streams := &streamTable{m: map[uint32]*stream{}}
	defer streams.cancelAll()
	for {
		f, err := l.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		st := streams.get(f.stream)
		switch f.typ {
		case fOpen:
			if st == nil {
				s.open(l, f, streams)
			}
		case fStdin:
			s.feed(st, f.payload)
		case fEOF:
			s.feed(st, nil)
		case fCancel:
			if st != nil {
				st.cancel()
			}
		}
	}
}

// stream is one request in flight on a link: its standard input and its cancel.
type stream struct {
	stdin  chan []byte
	cancel context.CancelFunc
}

// streamTable is a link's requests in flight, by stream id.
type streamTable struct {
	mu sync.Mutex
	m  map[uint32]*stream
}

func (t *streamTable) get(id uint32) *stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (t *streamTable) put(id uint32, st *stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st == nil {
		delete(t.m, id)
	} else {
		t.m[id] = st
	}
}

func (t *streamTable) cancelAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.m {
		st.cancel()
	}
}

// open starts the request that frame f opens, answering on l.
func (s *Server) open(l *link, f frame, streams *streamTable) {
	var req Request
	if err := json.Unmarshal(f.payload, &req); err != nil {
		_ = sendExit(l, f.stream, Exit{Code: -1, Err: "unreadable request: " + err.Error()})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{stdin: make(chan []byte, 256), cancel: cancel}
	streams.put(f.stream, st)
	go func(id uint32) {
		e := s.handle(ctx, req, &chanReader{ch: st.stdin, done: ctx.Done()},
			streamWriter{l, fStdout, id}, streamWriter{l, fStderr, id})
		streams.put(id, nil)
		cancel()
		_ = sendExit(l, id, e)
	}(f.stream)
}

// feed passes standard input (nil: its end) to a request in flight, unless the server quits.
func (s *Server) feed(st *stream, data []byte) {
	if st == nil {
		return
	}
	select {
	case st.stdin <- data:
	case <-s.quit:
	}
}

func sendExit(l *link, id uint32, e Exit) error {
	b, _ := json.Marshal(e)
	return l.send(fExit, id, b)
}

// chanReader reads stdin frames; a nil one is the end.
type chanReader struct {
	ch   chan []byte
	done <-chan struct{}
	buf  []byte
	eof  bool
}

func (c *chanReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.eof {
			return 0, io.EOF
		}
		select {
		case b := <-c.ch:
			if b == nil {
				c.eof = true
				continue
			}
			c.buf = b
		case <-c.done:
			return 0, io.EOF
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (s *Server) handle(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) Exit {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.last = time.Now()
		s.mu.Unlock()
	}()
	switch {
	case req.Control == "quit":
		s.mu.Lock()
		select {
		case <-s.quit:
		default:
			close(s.quit)
		}
		s.mu.Unlock()
		return Exit{}
	case req.Control != "":
		return Exit{Code: -1, Err: fmt.Sprintf("unknown control %q", req.Control)}
	case len(req.Path) == 0 && !s.Local:
		return Exit{Code: -1, Err: "this agent runs no commands itself: name a level"}
	case len(req.Path) == 0 && req.Sudo && s.RootHop != nil:
		if e, ok := s.asRoot(ctx, req, stdin, stdout, stderr); ok {
			return e
		}
		return runLocal(ctx, req, stdin, stdout, stderr)
	case len(req.Path) == 0:
		return runLocal(ctx, req, stdin, stdout, stderr)
	}
	return s.forwardCached(ctx, req, stdin, stdout, stderr)
}

// forward passes a request on to the agent of the next level down. With an Installer, each
// level on the way whose agent is missing is installed once, and the request asked again.
func (s *Server) forward(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) Exit {
	hop, rest := req.Path[0], req.Path[1:]
	installed := map[string]bool{}
	// install reports whether the missing level was installed now (not before in this request).
	install := func(path []Hop, missing string) (bool, error) {
		if s.Installer == nil || installed[missing] {
			return false, nil
		}
		installed[missing] = true
		return true, s.Installer.Install(ctx, s, path, missing)
	}
	for {
		child, e := s.child(ctx, hop)
		if child == nil {
			if e.Missing == "" {
				return e
			}
			if ok, err := install([]Hop{hop}, hop.Name); err != nil {
				return Exit{Code: -1, Err: err.Error()}
			} else if ok {
				continue
			}
			return e
		}
		counted := &countingReader{r: stdin}
		var in io.Reader
		if stdin != nil {
			in = counted
		}
		e, err := child.Exec(ctx, Request{Path: rest, Line: req.Line, Sudo: req.Sudo, Control: req.Control}, in, stdout, stderr)
		if err != nil {
			return Exit{Code: -1, Err: err.Error()}
		}
		if e.Missing == "" {
			return e
		}
		if ok, err := install(req.Path, e.Missing); err != nil {
			return Exit{Code: -1, Err: err.Error()}
		} else if ok {
			if counted.n == 0 {
				continue
			}
			e.Err += " (the agent was installed: run the command again)"
		}
		return e
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// asRoot runs a Sudo command through the level's root agent (RootHop). It reports false when
// that agent cannot be started (then, and for every later command, the caller uses sudo).
func (s *Server) asRoot(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) (Exit, bool) {
	s.mu.Lock()
	no := s.noRoot
	s.mu.Unlock()
	if no {
		return Exit{}, false
	}
	child, e := s.child(ctx, *s.RootHop)
	if child == nil {
		fmt.Fprintf(s.Log, "# no root agent (%s): sudo per command\n", e.Err)
		s.mu.Lock()
		s.noRoot = true
		s.mu.Unlock()
		return Exit{}, false
	}
	e, err := child.Exec(ctx, Request{Line: req.Line, Sudo: true}, stdin, stdout, stderr)
	if err != nil {
		return Exit{Code: -1, Err: err.Error()}, true
	}
	return e, true
}
