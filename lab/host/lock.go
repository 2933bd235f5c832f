package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lock is an exclusive flock(2) on a file, held until Unlock or the end of the process (the
// kernel then releases it: a crashed labctl never leaves a lab locked). The file holds the
// holder's pid and what it does, for the next one to read.
type Lock struct{ f *os.File }

// BusyError says who holds a lock, as its holder wrote it.
type BusyError struct {
	Path string
	PID  int
	What string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is held by pid %d (%s)", e.Path, e.PID, e.What)
}

// TryLock takes the lock on path for what (a verb: "up", "box build labctl/bookworm") or
// returns a *BusyError naming its holder, at once.
func TryLock(path, what string) (*Lock, error) {
	// OpenOwn: the lock is truncated and written below, never through a symlink nor into a
	// file with another hard link.
	f, err := OpenOwn(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, holder(f, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), what)), 0)
	return &Lock{f: f}, nil
}

// holder reads who holds the lock; its holder may be writing it, so an empty file is read
// again for a moment.
func holder(f *os.File, path string) *BusyError {
	b := &BusyError{Path: path, What: "unknown"}
	for i := 0; i < 10; i++ {
		buf := make([]byte, 256)
		n, _ := f.ReadAt(buf, 0)
		line := strings.TrimSpace(string(buf[:n]))
		if pid, what, ok := strings.Cut(line, " "); ok && strings.HasSuffix(string(buf[:n]), "\n") {
			b.PID, _ = strconv.Atoi(pid)
			b.What = what
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b
}

// WaitLock takes the lock on path for what, waiting while another process holds it (waiting
// is told who, once) until ctx is done.
func WaitLock(ctx context.Context, path, what string, waiting func(*BusyError)) (*Lock, error) {
	told := false
	for {
		l, err := TryLock(path, what)
		var busy *BusyError
		if !errors.As(err, &busy) {
			return l, err
		}
		if !told && waiting != nil {
			waiting(busy)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s (pid %d, %s): %w", path, busy.PID, busy.What, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Unlock releases the lock (its file stays: removing it would let two processes lock two
// files of one name).
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}
