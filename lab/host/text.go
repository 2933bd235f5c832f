package host

import (
	"os"
	"strings"
)

// LastLines is the last n lines of text (its trailing newlines dropped): the end of a log or
// of a command's output, which is where a failure says why.
func LastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailFile is LastLines of a file; "" when it cannot be read.
func TailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return LastLines(string(data), n)
}
