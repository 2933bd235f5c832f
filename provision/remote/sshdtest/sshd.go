// Package sshdtest starts a real OpenSSH server on 127.0.0.1 for tests, with its own config,
// host key and authorized key, and a proxy in front of it that can stall or cut connections.
// It is for tests only; it knows nothing of labctl.
package sshdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a real OpenSSH server on 127.0.0.1 with its own config, host key and authorized
// key, started by the test and stopped by its cleanup.
type Server struct {
	t        testing.TB
	dir, bin string
	// Port is where it listens on 127.0.0.1; User the user it lets in with ClientKey.
	Port               int
	hostKey, ClientKey string
	User               string
	cmd                *exec.Cmd
}

// Keygen makes an ed25519 key pair at path (and path.pub).
func Keygen(t testing.TB, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
}

// Start starts a server; it fails (never skips) when OpenSSH is missing, with the fix.
func Start(t testing.TB) *Server {
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
	s := &Server{t: t, dir: dir, bin: bin, User: u.Username,
		hostKey: filepath.Join(dir, "host_ed25519"), ClientKey: filepath.Join(dir, "client_ed25519")}
	Keygen(t, s.hostKey)
	Keygen(t, s.ClientKey)
	pub, _ := os.ReadFile(s.ClientKey + ".pub")
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory (root only; harmless otherwise)
	s.Port = FreePort(t)
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// FreePort is a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Restart starts the server (again, after Stop) on the same port with the same keys.
func (s *Server) Restart() {
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
`, s.Port, s.hostKey, filepath.Join(s.dir, "authorized_keys"), filepath.Join(s.dir, "sshd.pid"))), 0o644)
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", conf)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not listen on %d", s.Port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server and every process it started (listener, connections, sessions), as
// a crashed or rebooted VM would.
func (s *Server) Stop() {
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

// SSHArgs are the arguments of the ssh binary for the same server (for benchmarks).
func (s *Server) SSHArgs(knownHosts string) []string {
	return []string{"-p", strconv.Itoa(s.Port), "-i", s.ClientKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + knownHosts, s.User + "@127.0.0.1"}
}

// Dir is the server's own directory (config, keys), for a test's scratch files.
func (s *Server) Dir() string { return s.dir }

// RenewHostKey gives the (stopped) server a new host key, as a recreated VM would have.
func (s *Server) RenewHostKey() {
	os.Remove(s.hostKey)
	os.Remove(s.hostKey + ".pub")
	Keygen(s.t, s.hostKey)
}

// Proxy forwards TCP connections from its own 127.0.0.1 port to the server's, and can stall
// them (forward nothing for a while, as a busy network or guest does) or cut them (close
// every connection it holds, as a dropped link does). New connections go through afterwards.
type Proxy struct {
	Port  int
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	gate  sync.RWMutex // held for writing while stalled
}

// NewProxy starts a proxy to 127.0.0.1:to, stopped by the test's cleanup.
func NewProxy(t testing.TB, to int) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Port: l.Addr().(*net.TCPAddr).Port, l: l}
	t.Cleanup(func() { l.Close(); p.Cut() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(to))
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go p.pipe(in, out)
			go p.pipe(out, in)
		}
	}()
	return p
}

func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock() // waits while stalled
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Stall forwards nothing, either way, for d.
func (p *Proxy) Stall(d time.Duration) {
	p.gate.Lock()
	time.AfterFunc(d, p.gate.Unlock)
}

// Cut closes every connection the proxy holds.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
