// Package agent keeps a lab's levels one message away: a chain of labctl agents, one per level
// (the VM, each container), each started once and reached through its parent's, so that a
// command at any level is a message on an open stream instead of a new SSH session, a new
// systemd scope and a new lxc-attach. One link carries many commands at once; each command
// keeps its exit code, its stdout and stderr apart, its stdin, and its cancellation.
//
// The wire: frames of [type u8][stream u32][length u32][payload] in both directions of a link
// (a Unix socket, an SSH session's stdio, an lxc-attach's stdio). A stream is one command:
// the side that opens it sends Open, stdin and Cancel; the other sends stdout, stderr, Exit.
package agent

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame types.
const (
	fHello  byte = 'H' // payload: the agent's version (its binary's sha256), first on a link
	fOpen   byte = 'O' // payload: Request as JSON
	fStdin  byte = 'i' // payload: bytes for the command's stdin
	fEOF    byte = 'e' // the command's stdin ends
	fStdout byte = 'o'
	fStderr byte = 'E'
	fExit   byte = 'X' // payload: Exit as JSON; the stream ends
	fCancel byte = 'C' // the opener gave up: kill the command
)

// maxPayload bounds one frame: a corrupt or hostile length never allocates more.
const maxPayload = 1 << 20

// chunk is how much of a stream one frame carries.
const chunk = 32 << 10

type frame struct {
	typ     byte
	stream  uint32
	payload []byte
}

// link is one end of a framed connection: writes are serialized, reads come from one loop.
type link struct {
	r   *bufio.Reader
	wmu sync.Mutex
	w   io.Writer
	c   io.Closer
}

func newLink(r io.Reader, w io.Writer, c io.Closer) *link {
	return &link{r: bufio.NewReaderSize(r, 64<<10), w: w, c: c}
}

func (l *link) send(typ byte, stream uint32, payload []byte) error {
	var h [9]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:5], stream)
	binary.BigEndian.PutUint32(h[5:9], uint32(len(payload)))
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if _, err := l.w.Write(h[:]); err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	_, err := l.w.Write(payload)
	return err
}

// errNotAgent is a peer that does not speak the protocol (say, a shell that printed an error).
var errNotAgent = errors.New("the peer is not a labctl agent")

func (l *link) recv() (frame, error) {
	var h [9]byte
	if _, err := io.ReadFull(l.r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: h[0], stream: binary.BigEndian.Uint32(h[1:5])}
	n := binary.BigEndian.Uint32(h[5:9])
	if n > maxPayload || !knownType(f.typ) {
		return frame{}, fmt.Errorf("%w (frame type %q, length %d)", errNotAgent, f.typ, n)
	}
	if n > 0 {
		f.payload = make([]byte, n)
		if _, err := io.ReadFull(l.r, f.payload); err != nil {
			return frame{}, err
		}
	}
	return f, nil
}

func knownType(t byte) bool {
	switch t {
	case fHello, fOpen, fStdin, fEOF, fStdout, fStderr, fExit, fCancel:
		return true
	}
	return false
}

func (l *link) close() error {
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}

// streamWriter sends what is written to it as frames of one type on one stream.
type streamWriter struct {
	l      *link
	typ    byte
	stream uint32
}

func (w streamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), chunk)
		if err := w.l.send(w.typ, w.stream, p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// copyStdin sends r on a stream as stdin frames, then the end of it.
func copyStdin(l *link, stream uint32, r io.Reader) {
	if r != nil {
		buf := make([]byte, chunk)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if l.send(fStdin, stream, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
	}
	_ = l.send(fEOF, stream, nil)
}
