package remote

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labctl/labctl/lab/host"
)

// Result is what a command left: its output and exit code. A non-zero exit code is a result,
// not a transport error.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

// OK reports whether the command exited 0.
func (r Result) OK() bool { return r.ExitCode == 0 }

// RunError is a command that exited non-zero, with everything the user needs to see.
type RunError struct {
	Target string
	Cmd    string
	Result Result
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "on %s: `%s` exited %d", e.Target, e.Cmd, e.Result.ExitCode)
	if out := tail(e.Result.Stderr, 12); out != "" {
		fmt.Fprintf(&b, "\nstderr:\n%s", out)
	}
	if out := tail(e.Result.Stdout, 12); out != "" {
		fmt.Fprintf(&b, "\nstdout:\n%s", out)
	}
	return b.String()
}

// tail keeps the last n lines of s, saying how many came before.
func tail(s string, n int) string {
	t := host.LastLines(s, n)
	if before := strings.Count(strings.TrimRight(s, "\n"), "\n") + 1 - n; before > 0 {
		t = fmt.Sprintf("... (%d lines before)\n", before) + t
	}
	return t
}

// MaxKept is how much of a command's stdout, and of its stderr, a Result keeps: a guest that
// prints more (broken, or hostile) cannot make labctl hold it all in memory. The output still
// streams whole to the log and to a caller's writers (`labctl exec` passes it on).
var MaxKept = 16 << 20

// Kept collects a command's output for its Result: the first MaxKept bytes, and a count of
// the rest.
type Kept struct {
	b    bytes.Buffer
	more int64
}

func (k *Kept) Write(p []byte) (int, error) {
	room := max(MaxKept-k.b.Len(), 0)
	if room > len(p) {
		room = len(p)
	}
	k.b.Write(p[:room])
	k.more += int64(len(p) - room)
	return len(p), nil
}

// String is what was kept, with a last line that says how much was not.
func (k *Kept) String() string {
	if k.more == 0 {
		return k.b.String()
	}
	return fmt.Sprintf("%s\n[labctl: %d more bytes of output not kept: over %d MiB]\n", k.b.String(), k.more, MaxKept>>20)
}

// Printable is s as a terminal shows it harmlessly: control characters (escape sequences,
// carriage returns, bells) and bytes that are not UTF-8 written as Go escapes ("\x1b[2J").
// Text that came from a guest is passed through it before labctl prints it or builds on it.
func Printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
