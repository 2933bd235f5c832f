package provision

import (
	"regexp"
	"strings"

	"github.com/labctl/labctl/provision/remote"
)

// fakeRule is a scripted answer of the fake connection (fakeConn.on): it answers every
// command that matches its pattern, before the fake guest's model is asked.
type fakeRule struct {
	re  *regexp.Regexp
	fn  func(cmd string) remote.Result
	hit int
}

// newFakeConn is a connection to a new fake guest.
func newFakeConn() *fakeConn { return &fakeConn{g: newFakeGuest()} }

// on scripts an answer: a command matching pattern is answered by fn instead of the model.
func (c *fakeConn) on(pattern string, fn func(cmd string) remote.Result) {
	c.rules = append(c.rules, fakeRule{re: regexp.MustCompile(pattern), fn: fn})
}

// answer scripts a fixed answer for the commands matching pattern.
func (c *fakeConn) answer(pattern, stdout string, code int) {
	c.on(pattern, func(string) remote.Result { return remote.Result{Stdout: stdout, ExitCode: code} })
}

// scripted answers cmd from the scripted rules, if one matches.
func (c *fakeConn) scripted(cmd string) (remote.Result, bool) {
	for i := range c.rules {
		if c.rules[i].re.MatchString(cmd) {
			c.rules[i].hit++
			return c.rules[i].fn(cmd), true
		}
	}
	return remote.Result{}, false
}

// sent counts the commands sent that contain sub.
func (c *fakeConn) sent(sub string) int {
	n := 0
	for _, cmd := range c.cmds {
		if strings.Contains(cmd, sub) {
			n++
		}
	}
	return n
}
