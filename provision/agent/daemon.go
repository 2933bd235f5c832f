package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultIdle is how long the host's agent of a lab lives without a command.
const DefaultIdle = 10 * time.Minute

// ServeSocket is the host's agent of a lab: it answers on the Unix socket sock (mode 0600)
// until it is asked to quit, ctx ends, or no command ran for idle; then it removes the socket
// and ends the links below. The caller holds the lab's agent lock: a socket left at sock by an
// agent that died is stale and removed.
func ServeSocket(ctx context.Context, s *Server, sock string, idle time.Duration) error {
	s.init()
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ln, err := listenPrivate(sock)
	if err != nil {
		return err
	}
	defer os.Remove(sock)
	defer s.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if err := s.Serve(conn, conn); err != nil {
					fmt.Fprintf(s.Log, "# a client link ended: %v\n", err)
				}
			}()
		}
	}()
	defer ln.Close()
	tick := time.NewTicker(min(idle/4, 5*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-s.Quit():
			fmt.Fprintln(s.Log, "# asked to quit")
			return nil
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if s.Idle() >= idle {
				fmt.Fprintf(s.Log, "# idle for %s: quitting\n", idle)
				return nil
			}
		}
	}
}

// ServeStdio is a level's agent in the guest: it checks that its own binary is the version it
// was started as (expect), then answers on stdin/stdout until stdin ends.
func ServeStdio(expect, dir string, stdin io.Reader, stdout io.Writer, log io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	f, err := os.Open(exe)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != expect {
		return fmt.Errorf("agent binary %s has sha256 %s, not %s: it was changed after it was installed", exe, got, expect)
	}
	s := &Server{Version: expect, Local: true, Log: log, Dir: dir}
	if os.Geteuid() != 0 {
		s.RootHop = &Hop{Name: "root", Enter: "sh -c", Sudo: true}
	}
	defer s.Close()
	return s.Serve(stdin, stdout)
}

// listenPrivate listens on the Unix socket sock, mode 0600 from the moment it can be reached
// there: it is made in a new directory of its owner's alone beside sock, given its mode, and
// renamed into place (the umask is the process's, and other goroutines create files too). The
// directory's name is as long as sock's, so a path short enough for a socket stays so.
func listenPrivate(sock string) (net.Listener, error) {
	var dir string
	for i := 0; ; i++ {
		dir = filepath.Join(filepath.Dir(sock), fmt.Sprintf(".a%06x", rand.Uint32()&0xffffff))
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i == 10 {
			return nil, err
		}
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	// The socket's path changes: its listener must not remove whatever is at tmp one day.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err = os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, sock)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
