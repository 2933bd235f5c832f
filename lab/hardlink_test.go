package lab

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/labdir"
)

// TestFaultHardLinkedStateAndLogNotWritten: a log, the console log or state.json planted in
// the lab directory as a hard link to a file elsewhere on the same file system (it could be
// /etc/shadow, or a file its planter reads) is never written into: a log is refused with its
// name and what to do, the console log is not truncated, state.json is replaced by rename.
func TestFaultHardLinkedStateAndLogNotWritten(t *testing.T) {
	faulttest.Count(t, "input", "hard-linked-state-and-log")
	l := testLab(t)
	const precious = `{"note": "precious: not labctl's"}` + "\n" // valid JSON: a state read through the link
	target := filepath.Join(filepath.Dir(l.Dir), "elsewhere")    // the same file system
	if err := os.WriteFile(target, []byte(precious), 0o644); err != nil {
		t.Fatal(err)
	}
	plant := func(p string) {
		t.Helper()
		os.Remove(p)
		if err := os.Link(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{labdir.ProvisionLog, labdir.ImagesLog, labdir.LayerLog} {
		plant(l.Log(name))
		f, err := l.OpenLog(name)
		if err == nil {
			f.WriteString("written through the link\n")
			f.Close()
		}
		if err == nil || !strings.Contains(err.Error(), l.Log(name)+" has 2 hard links") || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("a hard-linked %s was opened, or not refused by name with what to do: %v", name, err)
		}
		os.Remove(l.Log(name))
	}
	plant(l.Log(labdir.VagrantLog))
	if _, _, err := l.Vagrant(nil); err == nil || !strings.Contains(err.Error(), "hard links") {
		t.Errorf("a hard-linked vagrant.log was opened: %v", err)
	}
	plant(l.Log(labdir.ConsoleLog))
	if err := l.freshConsole(); err == nil || !strings.Contains(err.Error(), "hard links") {
		t.Errorf("a hard-linked console.log was emptied: %v", err)
	}
	plant(l.Path(labdir.State))
	if err := l.recordPort(2222); err != nil {
		t.Fatalf("state.json is written by rename, so a planted link is replaced: %v", err)
	}
	if data, _ := os.ReadFile(target); string(data) != precious {
		t.Fatalf("the linked file was written into: %q", data)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(l.Path(labdir.State), &st); err != nil || st.Nlink != 1 {
		t.Errorf("state.json is still the linked file (%d links): %v", st.Nlink, err)
	}
	if got, err := readState(l.Path(labdir.State)); err != nil || got.SSHPort != 2222 {
		t.Errorf("state.json after the rename: %+v, %v", got, err)
	}
}
