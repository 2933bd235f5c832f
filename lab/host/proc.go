package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Grace is how long a cancelled child's process group has to end after SIGTERM before it
// gets SIGKILL.
var Grace = 5 * time.Second

// Command is exec.CommandContext for a child that may start children of its own (a build
// script, vagrant, virsh). It runs in a process group of its own, so a Ctrl-C on the terminal
// reaches labctl only; when ctx is done the whole group gets SIGTERM, then SIGKILL after
// Grace, and Wait returns only once no process of the group is left.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return StopGroup(cmd.Process.Pid, Grace) }
	// Pipes still held by a process that left the group are closed a second later.
	cmd.WaitDelay = time.Second
	return cmd
}

// StopGroup ends the process group pgid: SIGTERM, up to grace for its processes to end, then
// SIGKILL. It returns once none is left, os.ErrProcessDone when the group was already gone.
func StopGroup(pgid int, grace time.Duration) error {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	} else if err != nil {
		return fmt.Errorf("SIGTERM to process group %d: %w", pgid, err)
	}
	if groupGone(pgid, grace) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if groupGone(pgid, 2*time.Second) {
		return nil
	}
	return fmt.Errorf("process group %d survived SIGKILL: pids %v", pgid, GroupMembers(pgid))
}

func groupGone(pgid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for len(GroupMembers(pgid)) > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// procStat is what labctl reads of /proc/PID/stat.
type procStat struct {
	pid, ppid, pgrp int
	state           byte
}

// processes lists the live processes (zombies left out: they have ended, and nothing may
// reap an orphan where PID 1 does not).
func processes() []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		out = append(out, procStat{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0][0]})
	}
	return out
}

// GroupMembers lists the live processes of process group pgid.
func GroupMembers(pgid int) []int {
	var pids []int
	for _, p := range processes() {
		if p.pgrp == pgid {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// KillChildGroups sends SIGKILL to the process group of every child that leads its own group
// (every child Command started): on a second interrupt, labctl leaves nothing behind and exits.
func KillChildGroups() {
	self := os.Getpid()
	for _, p := range processes() {
		if p.ppid == self && p.pgrp == p.pid {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	}
}

// Interrupted is the cause of a run cancelled by a signal.
type Interrupted struct{ Signal os.Signal }

func (e Interrupted) Error() string { return "interrupted by " + e.Signal.String() }

// ExitCode is the shell's code for a death by the signal: 128 + its number.
func (e Interrupted) ExitCode() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

// Interrupts handles SIGINT and SIGTERM for a run: the first cancels it with cause
// Interrupted (every Command's group gets SIGTERM, then SIGKILL after Grace, and labctl
// cleans up); a second kills the child groups at once and exits with code 130. What happens
// is said on w. stop stops listening.
func Interrupts(cancel context.CancelCauseFunc, w io.Writer) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(w, "labctl: %s: stopping (children get SIGTERM, SIGKILL after %s); again to exit at once\n", s, Grace)
			cancel(Interrupted{Signal: s})
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(w, "labctl: %s again: killing the children and exiting\n", s)
			KillChildGroups()
			os.Exit(130)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// Alive reports whether pid is a live process (a zombie has ended).
func Alive(pid int) bool {
	for _, p := range processes() {
		if p.pid == pid {
			return true
		}
	}
	return false
}

// WithEnv lists the live processes of this user named one of comms (their /proc comm) whose
// environment holds kv ("KEY=value"), other than this process.
func WithEnv(kv string, comms ...string) []int {
	var pids []int
	for _, p := range processes() {
		if p.pid == os.Getpid() {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/comm")
		if !slices.Contains(comms, strings.TrimSpace(string(comm))) {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
		if err != nil {
			continue
		}
		for _, e := range strings.Split(string(env), "\x00") {
			if e == kv {
				pids = append(pids, p.pid)
				break
			}
		}
	}
	return pids
}

// WaitForEnv waits until no process WithEnv(kv, comms...) is left, telling waiting (once)
// which it waits for; it gives up after max, saying which are left, or when ctx ends.
func WaitForEnv(ctx context.Context, kv string, comms []string, max time.Duration, waiting func(pids []int)) error {
	deadline := time.Now().Add(max)
	told := false
	for pids := WithEnv(kv, comms...); len(pids) > 0; pids = WithEnv(kv, comms...) {
		if !told && waiting != nil {
			waiting(pids)
			told = true
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v (%s) still run after %s: end them (kill %d), then run labctl again", pids, kv, max, pids[0])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}
