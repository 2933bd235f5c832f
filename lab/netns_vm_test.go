//go:build vm

package lab_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// forwardOnlyOnLoopback tries to reach the VM's SSH forward (127.0.0.1:port on the host) from
// a network namespace the test makes (it answers on the host's 127.0.0.1), joined to the host by a veth pair of link-local
// addresses (169.254.77.0/30: no traffic leaves the machine): through the host's end of the
// pair it must be refused, and the namespace's own 127.0.0.1 is not the host's. A listener of
// the test's own on the host's end must answer from there (else the attempt proves nothing),
// and no socket of the host listens on the port but on 127.0.0.1. Root only (a normal user
// makes no namespace): skipped, said so.
func forwardOnlyOnLoopback(t *testing.T, port int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("the forward's reach from a network namespace is tried as root only")
		return
	}
	ns := fmt.Sprintf("labctl-fwd-%d", os.Getpid())
	hostIf, nsIf := fmt.Sprintf("lfwd%dh", os.Getpid()%100000), fmt.Sprintf("lfwd%dn", os.Getpid()%100000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() }) // the veth pair goes with it
	ip("link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns)
	ip("addr", "add", "169.254.77.1/30", "dev", hostIf)
	ip("link", "set", hostIf, "up")
	ip("-n", ns, "addr", "add", "169.254.77.2/30", "dev", nsIf)
	ip("-n", ns, "link", "set", nsIf, "up")
	ip("-n", ns, "link", "set", "lo", "up")
	ln, err := net.Listen("tcp", "169.254.77.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for c, err := ln.Accept(); err == nil; c, err = ln.Accept() {
			c.Close()
		}
	}()
	reach := func(host string, port int) error {
		return exec.Command("ip", "netns", "exec", ns, "timeout", "5", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", host, port)).Run()
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Fatalf("the VM's SSH forward does not answer on the host's 127.0.0.1:%d (%v): nothing to try", port, err)
	} else {
		c.Close()
	}
	if err := reach("169.254.77.1", ln.Addr().(*net.TCPAddr).Port); err != nil {
		t.Fatalf("the namespace cannot reach the test's own listener on the host's end (%v): the attempt below would prove nothing", err)
	}
	for _, h := range []string{"169.254.77.1", "127.0.0.1"} {
		if err := reach(h, port); err == nil {
			t.Errorf("the VM's SSH forward (port %d) answered %s from another network namespace: it must listen on the host's 127.0.0.1 only", port, h)
		}
	}
	if addrs := listeners(t, port); len(addrs) != 1 || addrs[0] != "0100007F" {
		t.Errorf("sockets listening on port %d: %v, want 127.0.0.1 only (0100007F)", port, addrs)
	}
	t.Logf("the forward on 127.0.0.1:%d is out of reach of a network namespace (its listener answered there)", port)
}

// listeners are the local addresses (hex, as /proc/net/tcp writes them) of the sockets that
// listen on port, IPv4 and IPv6.
func listeners(t *testing.T, port int) []string {
	var addrs []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			a, p, _ := strings.Cut(fields[1], ":")
			if n, err := strconv.ParseInt(p, 16, 32); err == nil && int(n) == port {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs
}
