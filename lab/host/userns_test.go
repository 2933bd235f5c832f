package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSubIDs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte("other:100000:65536\nlabu:165536:1000\nlabu:231072:65536\n1001:300000:70000\n"), 0o644)
	for _, c := range []struct {
		name, uid string
		start     int
		ok        bool
	}{
		{"labu", "1000", 231072, true}, // the first range big enough
		{"bob", "1001", 300000, true},  // by uid
		{"eve", "1002", 0, false},
	} {
		start, ok := subIDs(f, c.name, c.uid)
		if start != c.start || ok != c.ok {
			t.Errorf("%s: %d %v, want %d %v", c.name, start, ok, c.start, c.ok)
		}
	}
	if h := SubIDsHint("eve"); !strings.HasPrefix(h, "sudo usermod --add-subuids ") || !strings.HasSuffix(h, " eve") {
		t.Errorf("hint %q", h)
	}
}

func TestInUserNSForRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP reason: root runs the build's commands as itself; this checks that")
	}
	if ns, err := InUserNS(); err != nil || ns != nil || BuildMode() != "root" {
		t.Fatalf("root: %v %v %s", ns, err, BuildMode())
	}
}

// TestRemoveAllInUserNS (a normal user with subordinate ids; scripts/user-run.sh runs it as
// one): a tree with a directory owned by a subordinate id, as a build cut short leaves, is
// beyond os.RemoveAll and removed by RemoveAll.
func TestRemoveAllInUserNS(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root removes anything itself: run as a normal user with subordinate ids (scripts/user-run.sh does)")
	}
	ns, err := InUserNS()
	if err != nil {
		t.Skip(err)
	}
	mk := func() string {
		d := filepath.Join(t.TempDir(), "rootfs")
		script := `mkdir -p "$1/etc" && touch "$1/etc/passwd" && chown -R 100:100 "$1/etc" && chmod 0755 "$1/etc"`
		if out, err := exec.Command(ns[0], append(ns[1:], "sh", "-c", script, "-", d)...).CombinedOutput(); err != nil {
			t.Fatalf("making a tree in the user namespace: %v: %s", err, out)
		}
		return d
	}
	d := mk()
	if err := os.RemoveAll(d); err == nil {
		t.Fatal("os.RemoveAll removed a directory owned by a subordinate id: the test proves nothing")
	}
	if err := RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Fatalf("%s is still there: %v", d, err)
	}
}
