package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
)

// inject injects a fault that falls while the verb runs; it says what it did.
func (s *soak) inject(p plan) string {
	switch p.fault.name {
	case "sigint-labctl", "sigkill-labctl":
		sig := map[string]syscall.Signal{"sigint-labctl": syscall.SIGINT, "sigkill-labctl": syscall.SIGKILL}[p.fault.name]
		if !s.run.signal(sig) {
			return "missed: no labctl command ran"
		}
		return "sent " + sig.String()
	case "sigkill-host-agent":
		pid := s.agentPID()
		if pid == 0 {
			return "missed: the lab's agent did not run"
		}
		return fmt.Sprintf("killed the agent, pid %d: %v", pid, syscall.Kill(pid, syscall.SIGKILL))
	case "sigkill-guest-agent":
		// one of the agents in the VM and its containers (all seen from the VM), chosen by pick
		return s.guestExec(fmt.Sprintf(`set -- $(pgrep -f 'agent-[^ ]* agent serve'); [ $# -gt 0 ] || exit 3; shift $(( %d %% $# )); kill -KILL $1`, p.pick%1000))
	case "sshd-restart":
		return s.guestExec("systemctl restart ssh")
	case "conn-cut":
		return s.guestExec("pkill -KILL -f '^sshd: vagrant'")
	case "guest-reboot":
		return s.guestExec("systemctl reboot")
	case "guest-crash":
		out, err := s.virsh("destroy", s.labState().DomainUUID)
		return fmt.Sprintf("virsh destroy: %v %s", err, strings.TrimSpace(out))
	case "libvirtd-restart":
		return s.restartLibvirtd(p.pick%2 == 0)
	}
	return "nothing"
}

// guestExec runs a shell command as root in the VM through the qemu guest agent: not through
// SSH or labctl, the paths the fault is aimed at.
func (s *soak) guestExec(cmd string) string {
	req, _ := json.Marshal(map[string]any{"execute": "guest-exec", "arguments": map[string]any{
		"path": "/bin/sh", "arg": []string{"-c", cmd}}})
	out, err := s.virsh("qemu-agent-command", s.labState().DomainUUID, string(req))
	if err != nil {
		return "missed: the guest agent did not take it: " + strings.TrimSpace(out)
	}
	return "in the guest: " + cmd
}

// agentPID is the pid of the lab's agent on the host (0: none runs): its lock holds the pid.
func (s *soak) agentPID() int {
	data, err := os.ReadFile(filepath.Join(s.labDir(), labdir.AgentLock))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	if pid <= 0 || !host.Alive(pid) || !strings.Contains(cmdline(pid), " agent ") {
		return 0
	}
	return pid
}

// restartLibvirtd ends the libvirtd that runs (labctl started it: the host has no service
// manager) and, when now, starts it again as labctl does (doctor --fix); else the next labctl
// command finds it down.
func (s *soak) restartLibvirtd(now bool) string {
	out, _ := exec.Command("pidof", "libvirtd").Output()
	pids := strings.Fields(string(out))
	if len(pids) != 1 {
		return fmt.Sprintf("missed: %d libvirtd processes", len(pids))
	}
	pid, _ := strconv.Atoi(pids[0])
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 300 && host.Alive(pid); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if !now {
		return fmt.Sprintf("stopped libvirtd (pid %d); left down for the next command", pid)
	}
	r := s.labctl("doctor", "--fix")
	return fmt.Sprintf("stopped libvirtd (pid %d), started again by labctl doctor --fix (exit %d)", pid, r.code)
}

// setScene injects a fault that sets the scene before the verb; the returned function undoes
// what must not outlive the verb (the full disk).
func (s *soak) setScene(p plan) (note string, undo func()) {
	undo = func() {}
	switch p.fault.name {
	case "enospc":
		filler := filepath.Join(s.state, "chaos-filler")
		note = fill(filler)
		undo = func() { os.Remove(filler) }
	case "stale-lock":
		note = s.staleLock()
	case "cache-corrupt":
		note = "between the destroy and the up"
	}
	return note, undo
}

// fill takes every free byte of the file system of path with one file: a MiB at a time, then
// a block at a time, until it says ENOSPC.
func fill(path string) string {
	f, err := os.Create(path)
	if err != nil {
		return "missed: " + err.Error()
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4096} {
		buf := make([]byte, chunk)
		for {
			w, err := f.Write(buf)
			n += int64(w)
			if err != nil {
				break
			}
		}
	}
	_ = f.Sync()
	return fmt.Sprintf("filled the lab's file system (%d MiB)", n>>20)
}

// staleLock leaves what a killed labctl leaves: the lab's lock file naming a dead pid (not
// held), and, when no agent runs, a socket file nobody listens on.
func (s *soak) staleLock() string {
	dead := exec.Command("true")
	_ = dead.Run()
	pid := dead.Process.Pid
	notes := []string{}
	if err := os.WriteFile(filepath.Join(s.labDir(), labdir.Lock), []byte(fmt.Sprintf("%d up\n", pid)), 0o644); err == nil {
		notes = append(notes, fmt.Sprintf("lock names dead pid %d", pid))
	}
	if s.agentPID() == 0 {
		sock := filepath.Join(s.labDir(), labdir.AgentSock)
		if fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0); err == nil {
			if syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}) == nil {
				notes = append(notes, "a dead agent.sock")
			}
			syscall.Close(fd)
		}
	}
	return strings.Join(notes, ", ")
}

func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(data), "\x00", " ")
}
