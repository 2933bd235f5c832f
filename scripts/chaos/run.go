package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runner runs the soak's commands: each in a process group of its own, its output kept in
// the soak's log (tmp/chaos/soak.log) and returned, the one running now known (a fault may be
// aimed at it).
type runner struct {
	log  io.Writer
	mu   sync.Mutex
	cur  *os.Process
	env  []string
	dir  string
	hang time.Duration
}

// result is one command's end.
type result struct {
	args []string
	code int
	out  string
	took time.Duration
	hung bool
}

func (r result) String() string {
	s := fmt.Sprintf("%s: exit %d in %.1fs", strings.Join(r.args, " "), r.code, r.took.Seconds())
	if r.hung {
		s += " (hung: killed)"
	}
	return s
}

// run runs argv in dir (the runner's when ""), waiting at most the runner's hang time: a
// command still running then is a hang, its group killed.
func (r *runner) run(dir string, argv ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), r.hang)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = r.dir, r.env
	if dir != "" {
		cmd.Dir = dir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, r.log)
	cmd.Stderr = cmd.Stdout
	fmt.Fprintf(r.log, "\n$ %s\n", strings.Join(argv, " "))
	start := time.Now()
	res := result{args: argv, code: -1}
	if err := cmd.Start(); err != nil {
		res.out = err.Error()
		return res
	}
	r.mu.Lock()
	r.cur = cmd.Process
	r.mu.Unlock()
	err := cmd.Wait()
	r.mu.Lock()
	r.cur = nil
	r.mu.Unlock()
	res.took, res.out = time.Since(start), out.String()
	res.hung = errors.Is(ctx.Err(), context.DeadlineExceeded)
	var exit *exec.ExitError
	switch {
	case err == nil:
		res.code = 0
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	}
	fmt.Fprintf(r.log, "# %s\n", res)
	return res
}

// signal sends sig to the command running now; false when none runs.
func (r *runner) signal(sig syscall.Signal) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return false
	}
	return r.cur.Signal(sig) == nil
}

// tail is the last n lines of s, indented.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
