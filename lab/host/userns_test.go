package host

import (
	"os"
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
