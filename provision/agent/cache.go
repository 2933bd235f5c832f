package agent

import (
	"bytes"
	"context"
	"io"
	"strings"
)

// A request marked Cache (the VM's facts) is answered from the first answer while nothing that
// could change it happened since: no root command ran at the level it names (but those that
// say they only read: Request.Reads), and no agent
// below was started again (a reboot, a container restart). Only a forwarding agent (the
// host's) keeps answers; a level's own commands are never cached.
type answer struct {
	exit           Exit
	stdout, stderr []byte
	via            *Client // the link to the level it came through
}

func cacheKey(req Request) string {
	var b strings.Builder
	for _, h := range req.Path {
		b.WriteString(h.Name + "\x00" + h.Enter + "\x00")
	}
	if req.Sudo {
		b.WriteString("sudo\x00")
	}
	return b.String() + req.Line
}

// forwardCached forwards req, or answers it from the cache when it asks for it.
func (s *Server) forwardCached(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) Exit {
	if !req.Cache {
		e := s.forward(ctx, req, stdin, stdout, stderr)
		if req.Sudo && len(req.Path) == 1 && !req.Reads {
			s.forget() // a root command at that level may have changed any answer about it
		}
		return e
	}
	key := cacheKey(req)
	s.mu.Lock()
	a, ok := s.answers[key]
	gen := s.gen
	s.mu.Unlock()
	if ok && s.live(req.Path[0], a.via) {
		_, _ = stdout.Write(a.stdout)
		_, _ = stderr.Write(a.stderr)
		return a.exit
	}
	var out, errb bytes.Buffer
	e := s.forward(ctx, req, nil, io.MultiWriter(stdout, &out), io.MultiWriter(stderr, &errb))
	if e.Err != "" || e.Missing != "" {
		return e
	}
	s.mu.Lock()
	// The link it came through; had the level started again meanwhile, gen would differ.
	via := s.children[childKey(req.Path[0])]
	if s.gen == gen && via != nil {
		if s.answers == nil {
			s.answers = map[string]answer{}
		}
		s.answers[key] = answer{exit: e, stdout: out.Bytes(), stderr: errb.Bytes(), via: via}
	}
	s.mu.Unlock()
	return e
}

// forget drops every kept answer.
func (s *Server) forget() {
	s.mu.Lock()
	s.answers = nil
	s.gen++
	s.mu.Unlock()
}

// live reports whether via is still the live link to hop's level (a link that broke, or was
// replaced, means the level may have rebooted since the answer).
func (s *Server) live(hop Hop, via *Client) bool {
	s.mu.Lock()
	c := s.children[childKey(hop)]
	s.mu.Unlock()
	if c == nil || c != via {
		return false
	}
	select {
	case <-c.Done():
		return false
	default:
		return true
	}
}
