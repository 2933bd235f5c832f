package lab

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/vagrant"
)

// TestConsoleTailOnFailedBoot: a failed boot's error ends with the last lines of the guest's
// console, without terminal escapes; an empty console says the kernel printed nothing; a lab
// with no console log gets the error as it was. A new boot starts from an empty console, and a
// console log that is a symlink is refused, its target untouched.
func TestConsoleTailOnFailedBoot(t *testing.T) {
	l := testLab(t)
	boot := &vagrant.VagrantError{Args: []string{"up"}, Err: errors.New("exit status 1"), Output: "Timed out while waiting for the machine to boot", BootTimedOut: true}
	if err := l.withConsole(boot); err != error(boot) {
		t.Fatalf("no console log: want the error as it was, got %v", err)
	}
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		b.WriteString("line " + string(rune('a'+i%26)) + "\r\n")
	}
	b.WriteString("[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mBasic System\x1b[0m.\r\n")
	if err := os.WriteFile(l.Log(labdir.ConsoleLog), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	err := l.withConsole(boot)
	if !errors.Is(err, boot) {
		t.Fatalf("the boot's error is lost: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, l.Log(labdir.ConsoleLog)) || !strings.HasSuffix(msg, "\n  [  OK  ] Reached target Basic System.") {
		t.Fatalf("want the console's path and its last line, unescaped, got:\n%s", msg)
	}
	if n := strings.Count(msg, "\n  "); n != consoleLines {
		t.Fatalf("want the last %d console lines, got %d:\n%s", consoleLines, n, msg)
	}

	if err := l.freshConsole(); err != nil {
		t.Fatal(err)
	}
	if err := l.withConsole(boot); err == nil || !strings.Contains(err.Error(), "is empty: its kernel printed nothing") {
		t.Fatalf("an empty console must say so, got %v", err)
	}
	// Vagrant failed before any boot (its machine locked by another process): an empty
	// console says nothing of it, and is not shown.
	locked := &vagrant.VagrantError{Args: []string{"up"}, Err: errors.New("exit status 1"), Output: "another process is already executing an action on the machine"}
	if err := l.withConsole(locked); err != error(locked) {
		t.Fatalf("an empty console was added to a failure that was no boot: %v", err)
	}

	target := l.Path("elsewhere")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(l.Log(labdir.ConsoleLog))
	if err := os.Symlink(target, l.Log(labdir.ConsoleLog)); err != nil {
		t.Fatal(err)
	}
	if err := l.freshConsole(); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Fatalf("a symlinked console log must be refused, got %v", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "keep" {
		t.Fatalf("the symlink's target was changed: %q", data)
	}
}
