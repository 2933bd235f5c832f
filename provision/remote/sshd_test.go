package remote

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testSSHD is a real OpenSSH server on 127.0.0.1 with its own config, host key and
// authorized key, started by the test and stopped by its cleanup.
type testSSHD struct {
	t                  testing.TB
	dir, bin           string
	port               int
	hostKey, clientKey string
	user               string
	cmd                *exec.Cmd
}

func keygen(t testing.TB, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
}

// startSSHD starts a server; it fails (never skips) when OpenSSH is missing, with the fix.
func startSSHD(t testing.TB) *testSSHD {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("integration tests need a real OpenSSH server at %s: run `make deps` (apt-get install openssh-server)", bin)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	s := &testSSHD{t: t, dir: dir, bin: bin, user: u.Username,
		hostKey: filepath.Join(dir, "host_ed25519"), clientKey: filepath.Join(dir, "client_ed25519")}
	keygen(t, s.hostKey)
	keygen(t, s.clientKey)
	pub, _ := os.ReadFile(s.clientKey + ".pub")
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory (root only; harmless otherwise)
	s.port = freePort(t)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *testSSHD) start() {
	conf := filepath.Join(s.dir, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
UseDNS no
LogLevel ERROR
Subsystem sftp internal-sftp
`, s.port, s.hostKey, filepath.Join(s.dir, "authorized_keys"), filepath.Join(s.dir, "sshd.pid"))), 0o644)
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", conf)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not listen on %d", s.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop kills the server and every process it started (listener, connections, sessions), as
// a crashed or rebooted VM would.
func (s *testSSHD) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	killTree(s.cmd.Process.Pid)
	s.cmd.Wait()
	s.cmd = nil
}

// killTree kills pid and its descendants (found through /proc), children first.
func killTree(pid int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			killTree(child)
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

func (s *testSSHD) config(knownHosts string) SSHConfig {
	return SSHConfig{Host: "127.0.0.1", Port: s.port, User: s.user, IdentityFiles: []string{s.clientKey},
		KnownHosts: knownHosts, BootTimeout: 10 * time.Second, KeepAlive: -1}
}

// sshArgs are the arguments of the ssh binary for the same server (for the benchmark).
func (s *testSSHD) sshArgs(knownHosts string) []string {
	return []string{"-p", strconv.Itoa(s.port), "-i", s.clientKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts, s.user + "@127.0.0.1"}
}
