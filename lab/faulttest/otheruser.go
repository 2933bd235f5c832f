package faulttest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Nobody is the uid and gid another local user's attacks run as (AsOtherUser).
const Nobody = 65534

// otherUserEnv carries the attack a child process runs as Nobody ("OP:PATH").
const otherUserEnv = "LABCTL_FAULTTEST_AS_OTHER_USER"

// init is the child of AsOtherUser: the test binary run as Nobody, which tries one thing and
// exits before any test runs, printing "ok" or "errno=N message".
func init() {
	op, path, ok := strings.Cut(os.Getenv(otherUserEnv), ":")
	if !ok {
		return
	}
	var err error
	switch op {
	case "read":
		_, err = os.ReadFile(path)
	case "list":
		_, err = os.ReadDir(path)
	case "write":
		var f *os.File
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			f.Close()
		}
	case "connect":
		var c net.Conn
		if c, err = net.Dial("unix", path); err == nil {
			c.Close()
		}
	default:
		err = fmt.Errorf("unknown attack %q", op)
	}
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Print("ok")
	case errors.As(err, &errno):
		fmt.Printf("errno=%d %v", int(errno), err)
	default:
		fmt.Printf("errno=0 %v", err)
	}
	os.Exit(0)
}

// AsOtherUser tries op on path as another local user (uid and gid Nobody, no groups), in a
// child process: "read" a file, "list" a directory, "write" (append to) a file, "connect" to a
// Unix socket. It returns nil when the attack succeeded, else its error (errors.Is finds the
// errno: syscall.EACCES). It needs root to change user: the test is skipped otherwise. The
// directories above path must be enterable by every user (Traversable) for the attack to
// test path's own protection.
func AsOtherUser(t *testing.T, op, path string) error {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("another user's attack needs root (to run a child as uid 65534)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := otherUserBinary(t, exe)
	cmd := exec.Command(bin)
	cmd.Env = []string{otherUserEnv + "=" + op + ":" + path, "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody, Groups: []uint32{}}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the other user's child did not run: %v %s", err, out)
	}
	if string(out) == "ok" {
		return nil
	}
	num, msg, ok := strings.Cut(strings.TrimPrefix(string(out), "errno="), " ")
	n, nerr := strconv.Atoi(num)
	if !ok || nerr != nil {
		t.Fatalf("the other user's child said %q", out)
	}
	if n == 0 {
		return fmt.Errorf("as uid %d: %s", Nobody, msg)
	}
	return fmt.Errorf("as uid %d: %s: %w", Nobody, msg, syscall.Errno(n))
}

// otherUserBinary copies the test binary exe where Nobody may run it (the go tool's build
// directory is its owner's alone), once per test.
func otherUserBinary(t *testing.T, exe string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "faulttest-other-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "attack")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Traversable lets every user enter the directories above path up to the system's temporary
// directory (a test's directories are its owner's alone), as /var/cache or a home directory
// let them: an attack then meets only the protection of path itself.
func Traversable(t *testing.T, path string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for d := filepath.Dir(filepath.Clean(path)); strings.HasPrefix(d, top+string(filepath.Separator)); d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}
