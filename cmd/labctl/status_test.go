package main

import (
	"strings"
	"testing"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/spec"
)

// TestFaultStatusPrintsGuestTextHarmlessly: a guest whose kernel, LXC version and container
// states carry terminal escape sequences (clear the screen, retitle the window, ring) gets them
// printed as escapes by `labctl status`, never sent to the terminal.
func TestFaultStatusPrintsGuestTextHarmlessly(t *testing.T) {
	faulttest.Count(t, "input", "status-escape-sequences")
	s, err := spec.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	st := lab.Status{Lab: s.Name, VM: "running", Kernel: "6.1\x1b[2J", LXC: "5.0.2\x07",
		Containers: map[string]string{"box1": "RUNNING\x1b]0;pwned\x07", "n1": "STOPPED\r\x1b[K"},
		Error:      "lxc-info said \x1b[31mred\x1b[0m"}
	var out strings.Builder
	printStatus(&out, &lab.Lab{Spec: s}, st)
	if strings.ContainsAny(out.String(), "\x1b\x07\r") {
		t.Fatalf("status printed control characters:\n%q", out.String())
	}
	for _, want := range []string{`kernel 6.1\x1b[2J, LXC 5.0.2\a`, `box1   RUNNING\x1b]0;pwned\a`, `n1     STOPPED\r\x1b[K`, `error: lxc-info said \x1b[31mred\x1b[0m`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status does not say %q:\n%s", want, out.String())
		}
	}
}
