package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultAgentSocketRefusesOtherUser: a real host agent (ServeSocket) started under the
// most permissive umask, in a directory every user may enter, still answers its owner only:
// another local user (uid 65534) gets EACCES on connect, so it cannot run commands in the lab
// as labctl's user (root).
func TestFaultAgentSocketRefusesOtherUser(t *testing.T) {
	faulttest.Count(t, "fault", "agent-socket-other-user")
	if os.Geteuid() != 0 {
		t.Skip("another user's attack needs root (to run a child as uid 65534)")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // the socket's own mode must protect it, whatever its directory's
	faulttest.Traversable(t, dir)
	sock := filepath.Join(dir, "agent.sock")
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeSocket(ctx, &Server{Version: "test", Log: io.Discard}, sock, time.Minute) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var c *Client
	var err error
	for i := 0; i < 100; i++ {
		if c, err = Dial(ctx, sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the agent's owner cannot connect: %v", err)
	}
	c.Close()
	if st, err := os.Lstat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the socket is %v (%v), want mode 0600", st.Mode(), err)
	}
	if err := faulttest.AsOtherUser(t, "connect", sock); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("another user connecting to the lab's agent: %v, want EACCES", err)
	}
}

// TestFaultAgentSocketLeavesTheUmask: the host's agent makes its socket 0600 without changing
// the process's umask (shared by every goroutine: a file that another one created at that
// instant came out 0600, or a socket 0777 when the umask was restored in between), seen in
// /proc/self/status while agents start, and the socket is 0600 from its first moment at its
// path: no other mode is ever seen there.
func TestFaultAgentSocketLeavesTheUmask(t *testing.T) {
	faulttest.Count(t, "fault", "agent-socket-umask")
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	stop := make(chan struct{})
	seen := make(chan []string, 1)
	go func() {
		var masks, modes []string
		sock := filepath.Join(dir, "agent.sock")
		for {
			select {
			case <-stop:
				seen <- append(masks, modes...)
				return
			default:
			}
			data, _ := os.ReadFile("/proc/self/status")
			for _, line := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(line, "Umask:") && strings.TrimSpace(strings.TrimPrefix(line, "Umask:")) != "0022" {
					masks = append(masks, line)
				}
			}
			if st, err := os.Lstat(sock); err == nil && st.Mode().Perm() != 0o600 {
				modes = append(modes, "socket "+st.Mode().String())
			}
		}
	}()
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- ServeSocket(ctx, &Server{Version: "test", Log: io.Discard}, filepath.Join(dir, "agent.sock"), time.Minute)
		}()
		var err error
		for j := 0; j < 200; j++ {
			var c *Client
			if c, err = Dial(ctx, filepath.Join(dir, "agent.sock")); err == nil {
				c.Close()
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if serr := <-done; err != nil || serr != nil {
			t.Fatalf("start %d: dial %v, serve %v", i, err, serr)
		}
	}
	close(stop)
	if bad := <-seen; len(bad) > 0 {
		t.Fatalf("while agents started, the process's umask or the socket's mode was not as it should be (%d times): %v", len(bad), bad[:min(len(bad), 5)])
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the agents left %d entries in the lab's directory: %v", len(entries), entries)
	}
}
