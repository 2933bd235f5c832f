package host

import (
	"strings"
	"testing"
)

func TestAptSourcesReplaceCodename(t *testing.T) {
	lines := debianLines("deb", "http://mirror.invalid/debian", "bookworm bookworm-updates", "main", "bookworm", "trixie")
	if strings.Join(lines, "|") != "deb http://mirror.invalid/debian trixie main|deb http://mirror.invalid/debian trixie-updates main" {
		t.Fatalf("got %q", lines)
	}
	if got := debianLines("deb", "https://other.invalid/apt", "cloud-sdk-bookworm", "main", "bookworm", "trixie"); got != nil {
		t.Fatalf("a vendor repository must be left out, got %q", got)
	}
}
