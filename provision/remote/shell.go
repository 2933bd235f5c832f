// Package remote runs commands in a lab: one pinned SSH connection per machine (Comm) with
// reconnects and remote kill on cancel, verified uploads, shell quoting, Result and
// RunError, and Targets for every nesting level (the VM, a container, a nested container).
// It knows nothing of specs or steps.
package remote

import (
	"fmt"
	"regexp"
	"strings"
)

// Quote quotes s for a POSIX shell so that it is one word with exactly s as its value. It is
// the one quoting helper: every command built from spec values goes through it.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if safeWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var safeWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// Join quotes each argument and joins them into one command line.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Shf formats a command line: every %s argument is quoted with Quote, so values never become
// shell syntax. Use %d for numbers.
func Shf(format string, args ...any) string {
	q := make([]any, len(args))
	for i, a := range args {
		if s, ok := a.(string); ok {
			q[i] = Quote(s)
		} else {
			q[i] = a
		}
	}
	return fmt.Sprintf(format, q...)
}
