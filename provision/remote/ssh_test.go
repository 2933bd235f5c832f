package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/provision/remote/sshdtest"
)

func dialTest(t *testing.T, s *sshdtest.Server) (*Comm, string) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	c, err := Dial(context.Background(), config(s, kh))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, kh
}

func TestSSHExec(t *testing.T) {
	t.Parallel() // its own sshd
	s := sshdtest.Start(t)
	c, kh := dialTest(t, s)
	ctx := context.Background()

	r, err := c.Run(ctx, "echo out; echo err >&2; exit 3", RunOpts{})
	if err != nil {
		t.Fatalf("a non-zero exit is a result, not an error: %v", err)
	}
	if r.Stdout != "out\n" || r.Stderr != "err\n" || r.ExitCode != 3 {
		t.Fatalf("got %+v", r)
	}
	r, err = c.Run(ctx, "tr a-z A-Z", RunOpts{Stdin: strings.NewReader("hello stdin")})
	if err != nil || r.Stdout != "HELLO STDIN" || r.ExitCode != 0 {
		t.Fatalf("stdin: %+v %v", r, err)
	}
	var streamed bytes.Buffer
	r, _ = c.Run(ctx, "printf 'a\\nb\\n'", RunOpts{Stdout: &streamed})
	if streamed.String() != "a\nb\n" || r.Stdout != "a\nb\n" {
		t.Fatalf("streamed %q captured %q", streamed.String(), r.Stdout)
	}
	pinned, _ := os.ReadFile(kh)
	if !strings.Contains(string(pinned), "ssh-ed25519") {
		t.Fatalf("the host key was not pinned in %s: %q", kh, pinned)
	}
	if c.Dials != 1 {
		t.Fatalf("%d dials for one connection", c.Dials)
	}
}

// TestSSHQuotingHostile sends hostile strings through Quote to a real shell over SSH.
func TestSSHQuotingHostile(t *testing.T) {
	t.Parallel() // its own sshd
	s := sshdtest.Start(t)
	c, _ := dialTest(t, s)
	for _, h := range []string{"it's", "$(touch /tmp/labctl-pwned)", "`id`", "a;b|c&d", "new\nline", `\"\\`, "'\"'\"'", "-e"} {
		r, err := c.Run(context.Background(), "printf %s "+Quote(h), RunOpts{})
		if err != nil || r.Stdout != h {
			t.Errorf("%q came back as %q (%v)", h, r.Stdout, err)
		}
	}
	if _, err := os.Stat("/tmp/labctl-pwned"); err == nil {
		t.Fatal("a quoted string was executed")
	}
}

func TestSSHUpload50MB(t *testing.T) {
	t.Parallel() // its own sshd
	s := sshdtest.Start(t)
	c, _ := dialTest(t, s)
	data := make([]byte, 50<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	dest := filepath.Join(s.Dir(), "upload.bin")
	var progress bytes.Buffer
	res, err := c.Upload(context.Background(), Upload{Src: bytes.NewReader(data), Size: int64(len(data)), Dest: dest, Mode: 0o640, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != hex.EncodeToString(sum[:]) || res.Bytes != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the far side has %d bytes, want %d identical ones (%v)", len(got), len(data), err)
	}
	st, _ := os.Stat(dest)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
	t.Logf("50 MB upload verified in %s (%.0f MB/s)", res.Duration, 50/res.Duration.Seconds())
	var back bytes.Buffer
	if err := c.Download(context.Background(), dest, &back); err != nil || !bytes.Equal(back.Bytes(), data) {
		t.Fatalf("download: %d bytes, %v", back.Len(), err)
	}
}

// TestSSHUploadShortSourceFails: a source shorter than announced is an error, not a silent
// truncated file.
func TestSSHUploadShortSourceFails(t *testing.T) {
	s := sshdtest.Start(t)
	c, _ := dialTest(t, s)
	_, err := c.Upload(context.Background(), Upload{Src: strings.NewReader("short"), Size: 1000, Dest: filepath.Join(s.Dir(), "short.bin"), Mode: 0o644})
	if err == nil {
		t.Fatal("a truncated upload was accepted")
	}
}

func TestSSHReconnectAfterRestart(t *testing.T) {
	t.Parallel() // its own sshd
	s := sshdtest.Start(t)
	c, _ := dialTest(t, s)
	ctx := context.Background()
	if r, err := c.Run(ctx, "true", RunOpts{}); err != nil || !r.OK() {
		t.Fatal(r, err)
	}
	s.Stop()
	s.Restart()
	r, err := c.Run(ctx, "echo back", RunOpts{})
	if err != nil || r.Stdout != "back\n" {
		t.Fatalf("after restart: %+v %v", r, err)
	}
	if c.Dials != 2 {
		t.Fatalf("want exactly one reconnect, dials=%d", c.Dials)
	}
}

func TestSSHHostKeyMismatchRefused(t *testing.T) {
	s := sshdtest.Start(t)
	c, kh := dialTest(t, s)
	c.Close()
	// The "VM" is recreated with a new host key on the same address.
	s.Stop()
	s.RenewHostKey()
	s.Restart()
	start := time.Now()
	_, err := Dial(context.Background(), config(s, kh))
	var hk *HostKeyError
	if !errors.As(err, &hk) {
		t.Fatalf("want a HostKeyError, got %v", err)
	}
	if !strings.Contains(err.Error(), "labctl destroy") || time.Since(start) > 5*time.Second {
		t.Fatalf("the refusal must be immediate and say how to reset: %v (%s)", err, time.Since(start))
	}
}

func TestSSHWrongKeyFailsFast(t *testing.T) {
	s := sshdtest.Start(t)
	other := filepath.Join(t.TempDir(), "other")
	sshdtest.Keygen(t, other)
	cfg := config(s, filepath.Join(t.TempDir(), "known_hosts"))
	cfg.IdentityFiles = []string{other}
	cfg.BootTimeout = time.Minute
	start := time.Now()
	_, err := Dial(context.Background(), cfg)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("want ErrAuth, got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("authentication failure was retried for %s", d)
	}
}

func TestSSHCancelStopsCommand(t *testing.T) {
	t.Parallel() // its own sshd
	s := sshdtest.Start(t)
	c, _ := dialTest(t, s)
	marker := filepath.Join(s.Dir(), "still-running")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, "sleep 3; touch "+Quote(marker), RunOpts{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the context's error, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	// The connection stays usable.
	if r, err := c.Run(context.Background(), "echo ok", RunOpts{}); err != nil || r.Stdout != "ok\n" {
		t.Fatalf("after cancel: %+v %v", r, err)
	}
	// And the remote command was really stopped: it never reaches its touch.
	time.Sleep(3500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the cancelled command kept running on the far side")
	}
}

func TestSSHWaitForBoot(t *testing.T) {
	t.Parallel() // its own sshd
	// Nothing listens yet: Dial keeps probing until the server comes up.
	s := sshdtest.Start(t)
	s.Stop()
	restarted := make(chan struct{})
	go func() { defer close(restarted); time.Sleep(1500 * time.Millisecond); s.Restart() }()
	start := time.Now()
	c, err := Dial(context.Background(), config(s, filepath.Join(t.TempDir(), "kh")))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if time.Since(start) < time.Second {
		t.Fatal("Dial returned before the server was up")
	}
	// And gives up at the deadline with a hint.
	<-restarted // Restart may still be probing the port it listens on
	s.Stop()
	cfg := config(s, filepath.Join(t.TempDir(), "kh"))
	cfg.BootTimeout = 1 * time.Second
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("want a boot timeout, got %v", err)
	}
}

// BenchmarkCommandLatency compares, against the same local sshd, one command over the
// persistent connection with one fresh `ssh` process per command, and reports the ratio.
func BenchmarkCommandLatency(b *testing.B) {
	s := sshdtest.Start(b)
	kh := filepath.Join(b.TempDir(), "known_hosts")
	c, err := Dial(context.Background(), config(s, kh))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 20
	time1 := func(f func()) time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		return time.Since(start) / n
	}
	b.ResetTimer()
	var persistent, fresh time.Duration
	for i := 0; i < b.N; i++ {
		persistent = time1(func() {
			if r, err := c.Run(context.Background(), "true", RunOpts{}); err != nil || !r.OK() {
				b.Fatal(r, err)
			}
		})
		fresh = time1(func() {
			if out, err := exec.Command("ssh", append(s.SSHArgs(kh), "true")...).CombinedOutput(); err != nil {
				b.Fatalf("ssh: %v %s", err, out)
			}
		})
	}
	b.ReportMetric(float64(persistent.Microseconds())/1000, "persistent-ms/cmd")
	b.ReportMetric(float64(fresh.Microseconds())/1000, "fresh-ssh-ms/cmd")
	b.ReportMetric(float64(fresh)/float64(persistent), "fresh/persistent")
}

// config is how labctl reaches the test's server.
func config(s *sshdtest.Server, knownHosts string) SSHConfig {
	return SSHConfig{Host: "127.0.0.1", Port: s.Port, User: s.User, IdentityFiles: []string{s.ClientKey},
		KnownHosts: knownHosts, BootTimeout: 10 * time.Second, KeepAlive: -1}
}
