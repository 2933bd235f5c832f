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

// TestQemuReaches: a directory under one only its owner enters is beyond the system daemon's
// qemu, and the error names it and what to do.
func TestQemuReaches(t *testing.T) {
	base, err := os.MkdirTemp("", "qemureaches")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	open, closed := filepath.Join(base, "open"), filepath.Join(base, "closed")
	os.MkdirAll(filepath.Join(open, "vagrant.d"), 0o755)
	os.MkdirAll(filepath.Join(closed, "vagrant.d"), 0o755)
	os.Chmod(base, 0o755)
	os.Chmod(closed, 0o700)
	if err := QemuReaches(filepath.Join(open, "vagrant.d")); err != nil {
		t.Errorf("an open path: %v", err)
	}
	err = QemuReaches(filepath.Join(closed, "vagrant.d"))
	if err == nil || !strings.Contains(err.Error(), closed+" (mode 0700)") || !strings.Contains(err.Error(), "LABCTL_CACHE") {
		t.Errorf("a closed path: %v", err)
	}
}
