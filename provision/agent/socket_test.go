package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
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
