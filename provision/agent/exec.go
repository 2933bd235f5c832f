package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// runLocal runs the command in a process group of its own, killed whole on cancellation.
func runLocal(ctx context.Context, req Request, stdin io.Reader, stdout, stderr io.Writer) Exit {
	argv := []string{"sh", "-c", req.Line}
	if req.Sudo && os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Exit{Code: -1, Err: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		kill(cmd.Process.Pid, req.Sudo)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return Exit{Code: -1, Err: "cancelled"}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return Exit{Code: 128 + int(ws.Signal())}
		}
		return Exit{Code: ee.ExitCode()}
	}
	if err != nil {
		return Exit{Code: -1, Err: err.Error()}
	}
	return Exit{}
}

// kill kills a command's process group (through sudo when it runs as root and we do not).
func kill(pgid int, sudo bool) {
	if sudo && os.Geteuid() != 0 {
		_ = exec.Command("sudo", "-n", "kill", "-KILL", "--", fmt.Sprint(-pgid)).Run()
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
