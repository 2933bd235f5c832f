package remote

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLineReachesTheLevel runs the line Line makes for a nested container through stand-ins of
// the attach commands (each records the container it enters, then runs what follows "-- sh -c"),
// so the quoting of two wrappings and the order of the levels are what a shell sees.
func TestLineReachesTheLevel(t *testing.T) {
	bin, trace := t.TempDir(), filepath.Join(t.TempDir(), "trace")
	attach := `#!/bin/sh
# $0 -n NAME --clear-env --set-var PATH=... -- sh -c LINE
echo "$(basename "$0") $2" >> ` + trace + `
while [ "$1" != "--" ]; do shift; done
shift
exec "$@"
`
	for _, name := range []string{"lxc-attach", "unpriv-attach"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(attach), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	vm := &SSHVM{}
	box1 := NewContainer("box1", LevelUnpriv, vm)
	box1.Attach, box1.AsUser = []string{"unpriv-attach"}, true
	n1 := NewContainer("n1", LevelNested, box1)

	line, sudo := Line(n1, `echo "in $0: it's here"`)
	if sudo {
		t.Error("an unprivileged container's chain is entered as the lab user, not with sudo")
	}
	cmd := exec.Command("sh", "-c", line)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "in sh: it's here" {
		t.Fatalf("the line ran to %q (%v)\n%s", out, err, line)
	}
	got, _ := os.ReadFile(trace)
	if string(got) != "unpriv-attach box1\nlxc-attach n1\n" {
		t.Errorf("levels entered:\n%s want box1 (unpriv-attach) then n1 (lxc-attach)", got)
	}
	if l, sudo := Line(vm, "id"); l != "id" || sudo {
		t.Errorf("the VM's line = %q, %v", l, sudo)
	}
	if _, sudo := Line(NewContainer("p1", LevelUnpriv, vm), "id"); !sudo {
		t.Error("a privileged container of the VM is entered with sudo")
	}
}
