package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/lab/host"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHConfig says how to reach one machine.
type SSHConfig struct {
	Host string
	Port int
	User string
	// IdentityFiles are private keys, tried in order.
	IdentityFiles []string
	// KnownHosts is the file where the machine's host key is pinned (tmp/<lab>/known_hosts).
	KnownHosts string
	// InsecureIgnoreHostKey skips host-key pinning. Only for throwaway machines; documented as
	// `--insecure-ignore-host-key`.
	InsecureIgnoreHostKey bool
	// BootTimeout bounds the wait for the machine to accept SSH (default 5 minutes).
	BootTimeout time.Duration
	// Alive, when set, is asked between attempts to connect: an error (the machine is off)
	// ends the wait at once, with it; nil (it runs, booting maybe) lets the wait go on.
	Alive func(ctx context.Context) error
	// KeepAlive is the interval of keepalive requests (default 15 s; negative disables).
	KeepAlive time.Duration
	// KeepAliveMisses is how many intervals in a row without an answer drop the connection
	// (default 4: a minute of silence at the default interval).
	KeepAliveMisses int
	// Log receives the streamed output of every command and the connection events.
	Log io.Writer
}

// Addr is the machine's host:port.
func (c *Comm) Addr() string { return c.cfg.Addr() }

// Addr is host:port.
func (c SSHConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Comm is one SSH connection to one machine, shared by every command: a new session per
// command, and a transparent reconnect when the connection has died.
type Comm struct {
	cfg    SSHConfig
	auth   []ssh.AuthMethod
	mu     sync.Mutex
	client *ssh.Client
	stop   chan struct{}
	// Dials counts the SSH handshakes made (1 for a connection that never dropped).
	Dials int
}

// ErrAuth marks an authentication failure: it is fatal and never retried.
var ErrAuth = errors.New("ssh authentication failed")

// HostKeyError is a host key that differs from the pinned one.
type HostKeyError struct {
	Addr, File string
	Err        error
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("host key of %s does not match the one pinned in %s: the machine was recreated outside labctl, or this is another machine. "+
		"If you recreated the VM yourself, run `labctl destroy` and `labctl up` (that clears the pin), or delete %s", e.Addr, e.File, e.File)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// Dial waits until the machine accepts SSH and connects: a TCP probe, then handshakes in a
// loop until ctx or BootTimeout ends. Authentication and host-key failures end it at once.
func Dial(ctx context.Context, cfg SSHConfig) (*Comm, error) {
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 5 * time.Minute
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.KeepAliveMisses == 0 {
		cfg.KeepAliveMisses = 4
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	c := &Comm{cfg: cfg, stop: make(chan struct{})}
	for _, f := range cfg.IdentityFiles {
		key, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read SSH key %s: %w (run `labctl box build` or check `vagrant ssh-config`)", f, err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("parse SSH key %s: %w (labctl needs an unencrypted private key)", f, err)
		}
		c.auth = append(c.auth, ssh.PublicKeys(signer))
	}
	if len(c.auth) == 0 {
		return nil, fmt.Errorf("no SSH identity for %s@%s: give an IdentityFile", cfg.User, cfg.Addr())
	}
	if !cfg.InsecureIgnoreHostKey && cfg.KnownHosts == "" {
		return nil, errors.New("no known_hosts file to pin the host key in: set KnownHosts (or, for a throwaway machine, InsecureIgnoreHostKey)")
	}
	if err := c.connect(ctx, cfg.BootTimeout); err != nil {
		return nil, err
	}
	if cfg.KeepAlive > 0 {
		go c.keepAlive()
	}
	return c, nil
}

// connect dials until it succeeds, fails fatally, or the deadline passes.
func (c *Comm) connect(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		client, err := c.dialOnce(ctx)
		if err == nil {
			c.mu.Lock()
			c.client = client
			c.Dials++
			c.mu.Unlock()
			return nil
		}
		var hk *HostKeyError
		if errors.Is(err, ErrAuth) || errors.As(err, &hk) {
			return err
		}
		last = err
		if c.cfg.Alive != nil {
			if down := c.cfg.Alive(ctx); down != nil {
				return fmt.Errorf("SSH to %s@%s does not answer (%v), and %w", c.cfg.User, c.cfg.Addr(), last, down)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("SSH to %s@%s not ready after %s: %v (is the VM running? see tmp/<lab>/logs/vagrant.log, or raise the boot timeout)",
				c.cfg.User, c.cfg.Addr(), timeout, last)
		case <-time.After(backoff(attempt)):
		}
	}
}

func backoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << min(attempt, 4)
	return min(d, 2*time.Second)
}

func (c *Comm) dialOnce(ctx context.Context) (*ssh.Client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr())
	if err != nil {
		return nil, err
	}
	hostKey, err := c.hostKeyCallback()
	if err != nil {
		conn.Close()
		return nil, err
	}
	conf := &ssh.ClientConfig{User: c.cfg.User, Auth: c.auth, HostKeyCallback: hostKey, Timeout: 30 * time.Second}
	// The handshake is bounded by the context too: a guest that accepts TCP but hangs in the
	// key exchange must not hang us.
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.cfg.Addr(), conf)
	close(done)
	if err != nil {
		conn.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("%w as %s@%s with %s: %v (check the key in `vagrant ssh-config`; rebuild the box with `labctl box build` if it was replaced)",
				ErrAuth, c.cfg.User, c.cfg.Addr(), strings.Join(c.cfg.IdentityFiles, ", "), err)
		}
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// hostKeyCallback pins the first key seen in KnownHosts and refuses any other later.
func (c *Comm) hostKeyCallback() (ssh.HostKeyCallback, error) {
	if c.cfg.InsecureIgnoreHostKey {
		return ssh.InsecureIgnoreHostKey(), nil
	}
	file := c.cfg.KnownHosts
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, err
	}
	if f, err := host.OpenOwn(file, os.O_CREATE|os.O_RDONLY, 0o600); err != nil {
		return nil, fmt.Errorf("open known_hosts %s: %w", file, err)
	} else {
		f.Close()
	}
	check, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w (delete it to pin afresh)", file, err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) > 0 {
				return &HostKeyError{Addr: hostname, File: file, Err: err}
			}
			line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key)
			f, ferr := host.OpenAppend(file, 0o600)
			if ferr != nil {
				return ferr
			}
			defer f.Close()
			if _, ferr := fmt.Fprintln(f, line); ferr != nil {
				return ferr
			}
			fmt.Fprintf(c.cfg.Log, "# pinned host key %s %s of %s in %s\n", key.Type(), ssh.FingerprintSHA256(key), hostname, file)
			return nil
		}
		return err
	}, nil
}

func (c *Comm) keepAlive() {
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	var pending chan error // the request in flight, if any
	var pendingOn *ssh.Client
	misses := 0
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		cl := c.client
		c.mu.Unlock()
		if cl == nil || cl != pendingOn {
			pending, pendingOn, misses = nil, nil, 0
		}
		if cl == nil {
			continue
		}
		if pending != nil {
			select {
			case err := <-pending:
				pending = nil
				if err != nil {
					c.drop(cl) // the connection answered with an error: it is gone
					continue
				}
				misses = 0
			default:
				// No answer for a whole interval: a stall, or a dead connection. Only several
				// misses in a row drop it (a busy emulated guest can stall for tens of seconds).
				misses++
				if misses >= c.cfg.KeepAliveMisses {
					c.drop(cl)
					pending, pendingOn, misses = nil, nil, 0
				}
				continue
			}
		}
		pending, pendingOn = make(chan error, 1), cl
		go func(ch chan error) { _, _, err := cl.SendRequest("keepalive@openssh.com", true, nil); ch <- err }(pending)
	}
}

// drop forgets a dead client so that the next command reconnects.
func (c *Comm) drop(cl *ssh.Client) {
	c.mu.Lock()
	if c.client == cl {
		c.client = nil
	}
	c.mu.Unlock()
	cl.Close()
}

// Close ends the connection.
func (c *Comm) Close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		err := c.client.Close()
		c.client = nil
		return err
	}
	return nil
}

// Client returns the live SSH client, reconnecting when the connection has died.
func (c *Comm) Client(ctx context.Context) (*ssh.Client, error) {
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	fmt.Fprintf(c.cfg.Log, "# reconnecting to %s\n", c.cfg.Addr())
	if err := c.connect(ctx, c.cfg.BootTimeout); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client, nil
}

// session opens a session, reconnecting once if the connection turns out to be dead. A
// command is never re-run: only opening the session is retried.
func (c *Comm) session(ctx context.Context) (*ssh.Session, error) {
	for i := 0; ; i++ {
		cl, err := c.Client(ctx)
		if err != nil {
			return nil, err
		}
		s, err := cl.NewSession()
		if err == nil {
			return s, nil
		}
		c.drop(cl)
		if i == 1 {
			return nil, fmt.Errorf("open SSH session on %s: %w", c.cfg.Addr(), err)
		}
	}
}
