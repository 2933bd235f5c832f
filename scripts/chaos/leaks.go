package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
)

// baseline is what was there before the soak began: the processes, libvirt domains and pool
// volumes, /tmp's entries. What is there after a round and was not then must be the lab's own.
type baseline struct {
	pids    map[int]bool
	domains []string
	volumes []string
	tmp     []string
}

func takeBaseline() baseline {
	b := baseline{pids: map[int]bool{}}
	for _, p := range pids() {
		b.pids[p] = true
	}
	b.tmp, _ = filepath.Glob(tmpGlob)
	return b
}

// addLab adds the daemon's domains and volumes once the lab is up: the lab's own are told
// apart by its state, the others were there before.
func (b *baseline) addLab(s *soak) {
	st := s.labState()
	out, _ := s.virsh("list", "--all", "--uuid")
	for _, d := range strings.Fields(out) {
		if d != st.DomainUUID {
			b.domains = append(b.domains, d)
		}
	}
	out, _ = s.virsh("vol-list", host.Pool)
	for _, v := range volumeNames(out) {
		if !slices.Contains(st.Volumes, v) {
			b.volumes = append(b.volumes, v)
		}
	}
}

// tmpGlob: the temporary directories labctl makes in /tmp (its validation's).
const tmpGlob = "/tmp/labctl-validate-*"

// watched are the programs whose processes labctl starts and must not leave behind.
var watched = regexp.MustCompile(`^(labctl|vagrant|ruby|virsh|qemu-img|qemu-system-x86|mmdebstrap|apt-get|dpkg|ssh|scp|sftp|unshare)$`)

// leaks is everything left that should not be, seen twice (a process on its way out is not a
// leak): on the host 2 s apart; in the guest 35 s apart, past the 30 s in which sshd drops a
// session whose client is gone (a revert to a snapshot leaves such).
func (s *soak) leaks() []string {
	return append(persistent(s.leaksOnce, 2*time.Second), persistent(s.guestLeaks, 35*time.Second)...)
}

// newLeaks are the leaks no earlier round reported: one left for good is counted once, by
// the round that left it.
func (s *soak) newLeaks() []string {
	var fresh []string
	for _, l := range s.leaks() {
		k := digits.ReplaceAllString(l, "N")
		if !s.known[k] {
			s.known[k] = true
			fresh = append(fresh, l)
		}
	}
	return fresh
}

func persistent(look func() []string, gap time.Duration) []string {
	first := look()
	if len(first) == 0 {
		return nil
	}
	time.Sleep(gap)
	var both []string
	for _, l := range look() {
		if slices.ContainsFunc(first, func(f string) bool { return digits.ReplaceAllString(f, "N") == digits.ReplaceAllString(l, "N") }) {
			both = append(both, l)
		}
	}
	return both
}

// digits: a leak seen twice may have changed its count ("guest: 9 agents", then 7).
var digits = regexp.MustCompile(`[0-9]+`)

func (s *soak) leaksOnce() []string {
	st := s.labState()
	var ls []string
	ls = append(ls, s.processLeaks(st)...)
	out, _ := s.virsh("list", "--all", "--uuid")
	for _, d := range strings.Fields(out) {
		if d != st.DomainUUID && !slices.Contains(s.base.domains, d) {
			ls = append(ls, "domain "+d+" (not the lab's, not there before)")
		}
	}
	out, _ = s.virsh("vol-list", host.Pool)
	for _, v := range volumeNames(out) {
		if !slices.Contains(st.Volumes, v) && !slices.Contains(s.base.volumes, v) && !strings.Contains(v, "_vagrant_box_image_") && !strings.HasPrefix(v, "labctl-VAGRANTSLASH-layer-") {
			ls = append(ls, "volume "+v+" (not the lab's, no box's or layer's)")
		}
	}
	if st.DomainUUID != "" {
		out, _ = s.virsh("snapshot-list", st.DomainUUID, "--name")
		for _, n := range strings.Fields(out) {
			if n != "labctl-ready" {
				ls = append(ls, "snapshot "+n)
			}
		}
	}
	return append(ls, s.fileLeaks()...)
}

// processLeaks: a watched process that was not there before the soak and is neither the lab's
// agent nor the qemu of the lab's domain.
func (s *soak) processLeaks(st labState) []string {
	var ls []string
	agent := s.agentPID()
	self := os.Getpid()
	for _, pid := range pids() {
		if s.base.pids[pid] || pid == agent || pid == self {
			continue
		}
		comm := procComm(pid)
		line := cmdline(pid)
		if !watched.MatchString(comm) || strings.Contains(line, "/fakebin/") {
			continue
		}
		if strings.HasPrefix(comm, "qemu-system") && st.DomainUUID != "" && strings.Contains(line, st.DomainUUID) {
			continue
		}
		ls = append(ls, fmt.Sprintf("process %d %s", pid, trim(line, 120)))
	}
	return ls
}

// fileLeaks: a lock held with no labctl running, a socket with no agent, a temp file in the lab
// directory or the cache, a labctl entry in /tmp that was not there before.
func (s *soak) fileLeaks() []string {
	var ls []string
	for _, name := range []string{labdir.Lock, labdir.StateLock} {
		if held(filepath.Join(s.labDir(), name)) {
			ls = append(ls, "lock "+name+" held with no labctl command running")
		}
	}
	if _, err := os.Stat(filepath.Join(s.labDir(), labdir.AgentSock)); err == nil && s.agentPID() == 0 {
		ls = append(ls, "agent.sock with no agent")
	}
	tempName := regexp.MustCompile(`\.tmp-|\.tmp$|\.partial$|^\.render-|^\.layer-|^chaos-filler$`)
	for _, root := range []string{s.labDir(), host.CacheDir()} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && tempName.MatchString(d.Name()) {
				ls = append(ls, "temp file "+p)
			}
			return nil
		})
	}
	now, _ := filepath.Glob(tmpGlob)
	for _, t := range now {
		if !slices.Contains(s.base.tmp, t) {
			ls = append(ls, "temp "+t)
		}
	}
	return ls
}

// guestLeaks: in the VM (its containers' processes are seen from it), SSH sessions no labctl
// holds, more agents than levels,
// an lxc-attach without its agent, an agent binary left half-installed.
func (s *soak) guestLeaks() []string {
	r := s.labctl("exec", "--sudo", "--", "sh", "-c",
		`echo agents=$(pgrep -c '^agent-') sessions=$(pgrep -fc '^sshd: [a-z]+@') attach=$(pgrep -xc lxc-attach) partial=$(ls /var/lib/labctl | grep -c '\.[0-9][0-9]*$')`)
	if r.code != 0 {
		return []string{"guest: could not look: " + trim(r.out, 200)}
	}
	var ls []string
	counts := map[string]int{}
	for _, f := range strings.Fields(r.out) {
		if k, v, ok := strings.Cut(f, "="); ok {
			counts[k], _ = strconv.Atoi(v)
		}
	}
	// one SSH session (the host agent's), and its agents: the VM's (and its root one for
	// --sudo), box1's, n1's
	if counts["sessions"] > 1 {
		ls = append(ls, fmt.Sprintf("guest: %d SSH sessions with no labctl command running (the lab's agent holds one)", counts["sessions"]))
	}
	if counts["agents"] > 4 {
		ls = append(ls, fmt.Sprintf("guest: %d agents for 3 levels and the VM's root", counts["agents"]))
	}
	if counts["attach"] > 2 {
		ls = append(ls, fmt.Sprintf("guest: %d lxc-attach for 2 container levels", counts["attach"]))
	}
	if counts["partial"] > 0 {
		ls = append(ls, fmt.Sprintf("guest: %d half-installed agent binaries", counts["partial"]))
	}
	return ls
}

func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var ps []int
	for _, e := range entries {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

func procComm(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(data))
}

// held reports whether another process holds the lock file (flock, as labctl takes it).
func held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

func volumeNames(virshOut string) []string {
	var vs []string
	lines := strings.Split(virshOut, "\n")
	if len(lines) < 2 {
		return nil
	}
	for _, line := range lines[2:] {
		if f := strings.Fields(line); len(f) > 0 {
			vs = append(vs, f[0])
		}
	}
	return vs
}

func trim(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
