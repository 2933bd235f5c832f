package remote

import (
	"os/exec"
	"testing"
)

// TestQuoteHostile: whatever the string, the shell sees it back unchanged as one word.
func TestQuoteHostile(t *testing.T) {
	hostile := []string{"", "plain", "with space", "it's", `"double"`, "$(id)", "`id`", "a;rm -rf /", "back\\slash",
		"new\nline", "tab\tbed", "*", "~root", "-n", "$HOME", "'", "''", "a'b'c", "!event", "{a,b}", "x > /tmp/y", "ünïcødé"}
	for _, s := range hostile {
		out, err := exec.Command("sh", "-c", "printf '%s' "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("Quote(%q) came back as %q", s, out)
		}
	}
	// Nested twice, as a container inside a container wraps its command.
	inner := "echo " + Quote("it's $(nested)")
	twice := "sh -c " + Quote("sh -c "+Quote(inner))
	out, err := exec.Command("sh", "-c", twice).Output()
	if err != nil || string(out) != "it's $(nested)\n" {
		t.Fatalf("twice-wrapped command gave %q, %v", out, err)
	}
}

func TestShf(t *testing.T) {
	if got := Shf("chown %s %s && echo %d", "a b", "/x'y", 3); got != `chown 'a b' '/x'\''y' && echo 3` {
		t.Fatalf("Shf gave %s", got)
	}
}
