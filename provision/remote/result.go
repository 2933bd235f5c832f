package remote

import (
	"fmt"
	"strings"

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
