package lab

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/labdir"
)

// TestFaultOtherUserCannotReadLab: another local user can neither list a lab's directory nor
// read its state, its console or its logs, nor reach its agent's socket there; a lab directory
// an older labctl made 0755 is made its owner's alone when opened.
func TestFaultOtherUserCannotReadLab(t *testing.T) {
	faulttest.Count(t, "fault", "other-user-reads-lab")
	l := testLab(t)
	for _, d := range []string{l.Dir, l.LogDir()} {
		if err := os.Chmod(d, 0o755); err != nil { // as labctl before this change made them
			t.Fatal(err)
		}
	}
	l, err := OpenSpec(l.Source, l.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.recordPort(2222); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{labdir.ConsoleLog, labdir.ProvisionLog} {
		if err := os.WriteFile(l.Log(name), []byte("what runs in the VM\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{l.Dir, l.LogDir()} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s is not its owner's alone: %v %v", d, st.Mode(), err)
		}
	}
	faulttest.Traversable(t, l.Dir)
	attacks := []struct{ op, path string }{
		{"list", l.Dir}, {"read", l.Path(labdir.State)}, {"read", l.Log(labdir.ConsoleLog)},
		{"read", l.Log(labdir.ProvisionLog)}, {"list", l.LogDir()}, {"connect", l.Path(labdir.AgentSock)},
	}
	for _, a := range attacks {
		if err := faulttest.AsOtherUser(t, a.op, a.path); !errors.Is(err, syscall.EACCES) {
			t.Errorf("another user's %s of %s: %v, want EACCES", a.op, a.path, err)
		}
	}
}
