package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibvirtFor: lab.yaml's libvirt setting resolves to one daemon, auto by who runs labctl,
// and a normal user's pool lives under the XDG data directory.
func TestLibvirtFor(t *testing.T) {
	autoSession := os.Geteuid() != 0
	for _, c := range []struct {
		choice  string
		session bool
	}{{"session", true}, {"system", false}, {"auto", autoSession}, {"", autoSession}} {
		v, err := LibvirtFor(c.choice)
		if err != nil || v.Session != c.session {
			t.Errorf("LibvirtFor(%q) = %+v, %v; want session %v", c.choice, v, err, c.session)
		}
	}
	if _, err := LibvirtFor("qemu:///system"); err == nil || !strings.Contains(err.Error(), "use auto, session or system") {
		t.Errorf("a URI is not a setting: %v", err)
	}
	sys, _ := LibvirtFor("system")
	if sys.URI() != "qemu:///system" || sys.PoolDir() != "/var/lib/libvirt/images/labctl" || sys.Name() != "system" {
		t.Errorf("system: %s %s %s", sys.URI(), sys.PoolDir(), sys.Name())
	}
	ses, _ := LibvirtFor("session")
	t.Setenv("XDG_DATA_HOME", "/home/u/data")
	if ses.URI() != "qemu:///session" || ses.PoolDir() != "/home/u/data/labctl/images" {
		t.Errorf("session: %s %s", ses.URI(), ses.PoolDir())
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := ses.PoolDir(); got != filepath.Join("/home/u", ".local", "share", "labctl", "images") {
		t.Errorf("session without XDG_DATA_HOME: %s", got)
	}
}
