package provision

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/labctl/labctl/provision/remote"
)

// fakeRunner is a scripted connection: each rule answers the first command that matches its
// pattern; unmatched commands fail loudly, so a test sees every command a step sends.
type fakeRunner struct {
	mu    sync.Mutex
	rules []fakeRule
	cmds  []string
	stdin []string
}

type fakeRule struct {
	re  *regexp.Regexp
	fn  func(cmd string) remote.Result
	hit int
}

func (f *fakeRunner) on(pattern string, fn func(cmd string) remote.Result) {
	f.rules = append(f.rules, fakeRule{re: regexp.MustCompile(pattern), fn: fn})
}

func (f *fakeRunner) answer(pattern, stdout string, code int) {
	f.on(pattern, func(string) remote.Result { return remote.Result{Stdout: stdout, ExitCode: code} })
}

func (f *fakeRunner) Run(ctx context.Context, cmd string, opts remote.RunOpts) (remote.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	if opts.Stdin != nil {
		data, _ := io.ReadAll(opts.Stdin)
		f.stdin = append(f.stdin, string(data))
	}
	for i := range f.rules {
		if f.rules[i].re.MatchString(cmd) {
			f.rules[i].hit++
			return f.rules[i].fn(cmd), nil
		}
	}
	return remote.Result{ExitCode: 127, Stderr: "fake: no rule for " + cmd}, fmt.Errorf("fake: no rule for %q", cmd)
}

func (f *fakeRunner) sent(sub string) int {
	n := 0
	for _, c := range f.cmds {
		if strings.Contains(c, sub) {
			n++
		}
	}
	return n
}
