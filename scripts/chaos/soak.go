package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
)

// soak is one run of the soak: its lab (named chaos, from a preset, its directory on a small
// file system of its own when root), the commands' runner, what was there before it began.
type soak struct {
	o       options
	name    string
	bin     string
	dir     string // tmp/chaos: the lab file, the soak's log, the matrix verb's directory
	file    string // tmp/chaos/lab.yaml
	state   string // tmp/chaos/state: --state-dir (a 512 MiB ext4 loop mount when root)
	image   string // the loop mount's file, in labctl's cache
	small   bool   // state is the small mount: the enospc fault is possible
	logPath string
	run     *runner
	base    baseline
	canary  string
	rounds  []roundResult
	known   map[string]bool // leaks reported already (their digits as N)
	started time.Time
}

func newSoak(o options) (*soak, error) {
	bin := abs(o.bin)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (make build)", bin, err)
	}
	dir := abs(filepath.Join(labdir.Tmp, "chaos"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &soak{o: o, name: "chaos", bin: bin, dir: dir, file: filepath.Join(dir, "lab.yaml"),
		state: filepath.Join(dir, "state"), logPath: filepath.Join(dir, "soak.log"), started: time.Now(), known: map[string]bool{}}
	s.image = filepath.Join(host.CacheDir(), "chaos-state.img")
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s.run = &runner{log: log, env: os.Environ(), dir: dir, hang: 15 * time.Minute}
	return s, nil
}

// labctl runs the labctl binary on the soak's lab.
func (s *soak) labctl(args ...string) result {
	return s.run.run("", append([]string{s.bin, "-f", s.file, "--state-dir", s.state}, args...)...)
}

// labDir is the soak's lab directory.
func (s *soak) labDir() string { return filepath.Join(s.state, s.name) }

var nameLine = regexp.MustCompile(`(?m)^name: .*$`)

// setUp writes the lab file, mounts the state directory, brings the lab up, writes the
// canaries and takes the baseline.
func (s *soak) setUp() error {
	show := s.run.run("", s.bin, "presets", "show", s.o.preset)
	if show.code != 0 {
		return fmt.Errorf("labctl presets show %s: %s", s.o.preset, show.out)
	}
	if err := os.WriteFile(s.file, []byte(nameLine.ReplaceAllString(show.out, "name: "+s.name)), 0o644); err != nil {
		return err
	}
	if err := s.mountState(); err != nil {
		return err
	}
	s.base = takeBaseline()
	fmt.Printf("chaos: bringing the lab up (log %s)\n", s.logPath)
	if up := s.labctl("up"); up.code != 0 {
		return fmt.Errorf("labctl up: %s\n%s", up, tail(up.out, 15))
	}
	s.base.addLab(s)
	return s.writeCanaries(0)
}

// mountState makes tmp/chaos/state a small ext4 file system of its own (root only): the
// enospc fault fills it. A mount left by an earlier soak is used as it is.
func (s *soak) mountState() error {
	if err := os.MkdirAll(s.state, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 || mounted(s.state) {
		s.small = mounted(s.state)
		return nil
	}
	if entries, _ := os.ReadDir(s.state); len(entries) > 0 {
		return fmt.Errorf("%s holds files and is no mount: the soak mounts a file system there; move them away", s.state)
	}
	if _, err := os.Stat(s.image); err != nil {
		if err := s.sh("truncate", "-s", "512M", s.image); err != nil {
			return err
		}
		if err := s.sh("mkfs.ext4", "-q", "-F", "-m", "0", s.image); err != nil {
			return err
		}
	}
	// It holds the lab's directory (its state and logs): root's alone, as the lab's directory.
	if err := os.Chmod(s.image, 0o600); err != nil {
		return err
	}
	if err := s.sh("mount", "-o", "loop", s.image, s.state); err != nil {
		return err
	}
	s.small = true
	return os.Chmod(s.state, 0o755)
}

func (s *soak) sh(argv ...string) error {
	if r := s.run.run("", argv...); r.code != 0 {
		return fmt.Errorf("%s: %s", strings.Join(argv, " "), r.out)
	}
	return nil
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// tearDown destroys the soak's lab (unless kept) and unmounts its state directory.
func (s *soak) tearDown(failed bool) {
	if s.o.keep || (failed && s.o.keepOnFailure) {
		fmt.Printf("chaos: the lab is kept: %s -f %s --state-dir %s destroy\n", s.bin, s.file, s.state)
		return
	}
	if d := s.labctl("destroy"); d.code != 0 {
		fmt.Printf("chaos: destroy failed: %s\n%s\n", d, tail(d.out, 10))
		return
	}
	if s.small && s.sh("umount", s.state) == nil {
		os.Remove(s.image)
	}
}

// labState is what the soak reads of the lab's state.json.
type labState struct {
	Libvirt    string   `json:"libvirt"`
	DomainUUID string   `json:"domain_uuid"`
	Volumes    []string `json:"volumes"`
}

func (s *soak) labState() labState {
	var st labState
	data, _ := os.ReadFile(filepath.Join(s.labDir(), labdir.State))
	_ = json.Unmarshal(data, &st)
	if st.Libvirt == "" {
		st.Libvirt = "system"
	}
	return st
}

// virsh runs virsh on the lab's daemon, quietly (not through the log's runner).
func (s *soak) virsh(args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///" + s.labState().Libvirt}, args...)...).CombinedOutput()
	return string(out), err
}
