package host

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultLinkedLockAndLogNotWritten: a lock file (the lab's, the state's, a cache entry's:
// TryLock truncates it and writes its pid there) or a log planted as a hard link to a file
// elsewhere, as a symlink, or as a FIFO is refused, naming it, and the file it leads to is
// neither truncated nor written; nothing blocks on the FIFO.
func TestFaultLinkedLockAndLogNotWritten(t *testing.T) {
	faulttest.Count(t, "input", "linked-lock-and-log")
	dir := t.TempDir()
	const precious = "precious: not labctl's\n"
	target := filepath.Join(dir, "elsewhere")
	os.WriteFile(target, []byte(precious), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, plant := range []struct {
		how  string
		make func(p string) error
		want string
	}{
		{"hard link", func(p string) error { return os.Link(target, p) }, "hard links"},
		{"symlink", func(p string) error { return os.Symlink(target, p) }, "is a symlink"},
		{"FIFO", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "not a regular file"},
	} {
		for _, open := range []struct {
			what string
			fn   func(p string) error
		}{
			{"lock", func(p string) error {
				lk, err := TryLock(p, "up")
				if err == nil {
					lk.Unlock()
				}
				return err
			}},
			{"log", func(p string) error {
				f, err := OpenAppend(p, 0o644)
				if err == nil {
					f.WriteString("written through\n")
					f.Close()
				}
				return err
			}},
		} {
			p := filepath.Join(t.TempDir(), open.what)
			if err := plant.make(p); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- open.fn(p) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(2 * time.Second):
				t.Fatalf("opening a %s planted as a %s blocks", open.what, plant.how)
			}
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), plant.want) {
				t.Errorf("a %s planted as a %s: %v", open.what, plant.how, err)
			}
			if data, _ := os.ReadFile(target); string(data) != precious {
				t.Fatalf("a %s planted as a %s was written through: %q", open.what, plant.how, data)
			}
		}
	}
	// The lock and the log of labctl's own are still taken and written.
	lk, err := TryLock(filepath.Join(dir, "lock"), "up")
	if err != nil {
		t.Fatal(err)
	}
	lk.Unlock()
}
