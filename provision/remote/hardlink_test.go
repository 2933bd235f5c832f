package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
	"golang.org/x/crypto/ssh"
)

// TestFaultLinkedKnownHostsNotWritten: a known_hosts planted as a hard link or a symlink to a
// file elsewhere is refused, naming it, and the first pin is not appended to that file.
func TestFaultLinkedKnownHostsNotWritten(t *testing.T) {
	faulttest.Count(t, "input", "linked-known-hosts")
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	const precious = "# precious: not labctl's\n" // a valid known_hosts: only the pin would change it
	for _, plant := range []struct {
		how  string
		link func(old, new string) error
		want string
	}{{"hard link", os.Link, "has 2 hard links"}, {"symlink", os.Symlink, "is a symlink"}} {
		dir := t.TempDir()
		target, kh := filepath.Join(dir, "elsewhere"), filepath.Join(dir, "known_hosts")
		os.WriteFile(target, []byte(precious), 0o644)
		if err := plant.link(target, kh); err != nil {
			t.Fatal(err)
		}
		c := &Comm{cfg: SSHConfig{KnownHosts: kh, Log: io.Discard}}
		check, err := c.hostKeyCallback()
		if err == nil {
			err = check("127.0.0.1:2222", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}, key)
		}
		if err == nil || !strings.Contains(err.Error(), kh) || !strings.Contains(err.Error(), plant.want) {
			t.Errorf("a known_hosts that is a %s was used: %v", plant.how, err)
		}
		if data, _ := os.ReadFile(target); string(data) != precious {
			t.Errorf("the pin went through the %s into %s: %q", plant.how, target, data)
		}
	}
}
