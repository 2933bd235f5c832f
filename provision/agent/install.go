package agent

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// DefaultDir is where every level keeps the agent binary. Not /run: a Debian guest mounts it
// noexec. One version is kept: installing one removes the others.
const DefaultDir = "/var/lib/labctl"

// Path is the agent binary of a version in dir.
func Path(dir, version string) string { return dir + "/agent-" + short(version) }

func short(v string) string {
	if len(v) > 16 {
		return v[:16]
	}
	return v
}

// ServeLine is the command line, run at a level, that starts its agent on stdio, or exits
// exitMissing when this version is not installed there.
func ServeLine(dir, version string) string {
	p := quote(Path(dir, version))
	return fmt.Sprintf(`[ -x %s ] || exit %d; exec %s agent serve --expect %s --dir %s`, p, exitMissing, p, version, quote(dir))
}

// InstallLine is the command line, run at a level, that installs the agent binary it reads on
// stdin (written aside, then renamed: a cut upload leaves no half binary under the name), and
// removes other versions'.
func InstallLine(dir, version string) string {
	p := quote(Path(dir, version))
	return fmt.Sprintf(`set -e; umask 022; mkdir -p %s; t=%s.$$; cat > "$t"; chmod 755 "$t"; mv -f "$t" %s; for f in %s/agent-*; do [ "$f" = %s ] || rm -f "$f"; done`,
		quote(dir), p, p, quote(dir), p)
}

// ErrNotStatic is a labctl binary that needs a dynamic loader.
var ErrNotStatic = errors.New("this labctl is linked dynamically, so it cannot run as the agent in the guest: build it with CGO_ENABLED=0 (`make build` does)")

// CheckStatic refuses a binary that needs a dynamic loader: the agent runs in guests and
// containers whose C library may be older than the host's (or absent).
func CheckStatic(bin io.ReaderAt) error {
	f, err := elf.NewFile(bin)
	if err != nil {
		return fmt.Errorf("the labctl binary is not an ELF file: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return ErrNotStatic
		}
	}
	return nil
}

// Installer puts this labctl binary at the levels whose agent is missing.
type Installer struct {
	Binary  []byte
	Version string
	// Root installs at the first level (the VM), which the host's agent reaches by SSH:
	// it runs line as root there with bin on stdin.
	Root func(ctx context.Context, line string, bin io.Reader) error

	// One install per level at a time: an install removes the other files of the level's
	// agent directory, a concurrent install's half-written one among them. Keyed by the
	// level's path; an install takes only the locks of levels above its own (on its way),
	// so two installs never wait on each other in a circle.
	mu     sync.Mutex
	levels map[string]*sync.Mutex
}

func (in *Installer) lock(path []Hop) func() {
	var names []string
	for _, h := range path {
		names = append(names, childKey(h))
	}
	key := strings.Join(names, "\x00")
	in.mu.Lock()
	if in.levels == nil {
		in.levels = map[string]*sync.Mutex{}
	}
	m := in.levels[key]
	if m == nil {
		m = &sync.Mutex{}
		in.levels[key] = m
	}
	in.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// Install installs the agent at the level named missing on path (the path from s's level).
func (in *Installer) Install(ctx context.Context, s *Server, path []Hop, missing string) error {
	k := -1
	for i, h := range path {
		if h.Name == missing {
			k = i
		}
	}
	if k < 0 {
		return fmt.Errorf("the agent of %s is missing, and it is not on the way to the command", missing)
	}
	defer in.lock(path[:k+1])()
	line := InstallLine(s.dir(), in.Version)
	if k == 0 {
		return in.Root(ctx, line, bytes.NewReader(in.Binary))
	}
	hop := path[k]
	var stderr bytes.Buffer
	e := s.forward(ctx, Request{Path: path[:k], Line: hop.Enter + " " + quote(line), Sudo: hop.Sudo},
		bytes.NewReader(in.Binary), io.Discard, &stderr)
	if e.Code != 0 || e.Err != "" {
		return fmt.Errorf("install the labctl agent in %s: exit %d %s %s", missing, e.Code, e.Err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// quote quotes s for sh.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
