package remote

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/provision/remote/sshdtest"
)

// TestFaultHugeGuestOutputIsBounded: a guest command that prints far more than a Result keeps
// (a broken or hostile guest, over a real sshd) leaves a Result of the first MaxKept bytes and a
// line that says how much was not kept; the whole output still streams to the caller's writer.
func TestFaultHugeGuestOutputIsBounded(t *testing.T) {
	faulttest.Count(t, "fault", "huge-guest-output")
	old := MaxKept
	MaxKept = 1 << 20
	t.Cleanup(func() { MaxKept = old })
	c, _ := dialTest(t, sshdtest.Start(t))
	const printed = 6 << 20
	var streamed countWriter
	r, err := c.Run(context.Background(), fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; head -c %d /dev/zero | tr '\\0' y >&2", printed, printed), RunOpts{Stdout: &streamed})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("%v %d", err, r.ExitCode)
	}
	for name, out := range map[string]string{"stdout": r.Stdout, "stderr": r.Stderr} {
		if len(out) > MaxKept+200 {
			t.Errorf("the Result kept %d bytes of %s, over %d", len(out), name, MaxKept)
		}
		if want := fmt.Sprintf("[labctl: %d more bytes of output not kept: over 1 MiB]", printed-MaxKept); !strings.Contains(out, want) {
			t.Errorf("%s does not say what was not kept (%q): ends %q", name, want, out[max(len(out)-120, 0):])
		}
	}
	if streamed.n != printed {
		t.Errorf("the caller's writer got %d bytes, want all %d", streamed.n, printed)
	}
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// TestFaultGuestTextIsPrintable: text from a guest with terminal escape sequences (clear the
// screen, set the window title, a bell, a carriage return over the line) comes out with each
// control character written as an escape, printable and harmless; other text is unchanged.
func TestFaultGuestTextIsPrintable(t *testing.T) {
	faulttest.Count(t, "input", "guest-escape-sequences")
	for in, want := range map[string]string{
		"6.1.0-26-amd64":                   "6.1.0-26-amd64",
		"RUNNING\x1b[2J\x1b]0;pwned\x07":   `RUNNING\x1b[2J\x1b]0;pwned\a`,
		"5.0.2\rOK  ":                      `5.0.2\rOK  `,
		"x\u009b31m y":                     `x\u009b31m y`,
		"ünïcode stays":                    "ünïcode stays",
		"bad \xff\x9b byte":                `bad \xff\x9b byte`,
		"$(rm -rf /) ../../etc stays text": "$(rm -rf /) ../../etc stays text",
	} {
		got := Printable(in)
		if got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(got, "\x1b\x07\r\u009b") || !utf8.ValidString(got) {
			t.Errorf("Printable(%q) still holds a control character: %q", in, got)
		}
	}
}
