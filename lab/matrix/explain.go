package matrix

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/lab/labdir"
)

// EvidenceDir is where a failed cell keeps its lab's logs: cells/<cell>/evidence/.
const EvidenceDir = "evidence"

// evidenceMax bounds what a failed cell keeps of each log (its tail).
const evidenceMax = 1 << 20

// Why is one thing a failed cell's evidence says about why it failed: a known failure's
// explanation (with what to do) and the line that shows it.
type Why struct {
	Says string `json:"says"`
	// Found is FILE:LINE (relative to the cell's directory) and the line itself.
	Found string `json:"found"`
}

// signature is a known failure: a pattern of a log line and what it means. Says may use the
// pattern's groups as %[1]s, %[2]s, ...
type signature struct {
	re   *regexp.Regexp
	says string
}

// signatures are the failures labctl knows, the more specific first: the first one a line
// matches explains it. Each comes from a failure seen in a real run (the note of the issue
// that added it says where).
var signatures = []signature{
	{regexp.MustCompile(`apparmor="DENIED" operation="userns_create".*profile="([^"]+)"`),
		"AppArmor denied creating a user namespace to the profile %[1]s: the guest's kernel mediates user namespaces of confined programs and that profile has no `userns,` rule. LXC's own profiles gained it for AppArmor 4 (trixie's and forky's LXC packaging patches it in); use such an LXC, or add `userns,` to the profile in the box"},
	{regexp.MustCompile(`apparmor="DENIED" operation="([^"]+)".*profile="([^"]+)"`),
		"AppArmor denied %[1]s to the profile %[2]s: the container's AppArmor profile (the level's apparmor: field, lxc.apparmor.profile) decides; the denial line says what was asked"},
	{regexp.MustCompile(`cannot mount read-write because of unsupported optional features \((0x[0-9a-fA-F]+)\)`),
		"the kernel cannot mount the btrfs data disk read-write: mkfs.btrfs gave it optional features (%[1]s) this kernel lacks (a btrfs-progs newer than the kernel); labctl leaves block-group-tree out for kernels before 6.1, so this is another feature: leave it out with mkfs.btrfs -O ^FEATURE for this kernel"},
	{regexp.MustCompile(`Failed to mount cgroups - unsupported cgroup layout`),
		"LXC cannot mount the host's cgroup layout into the container: LXC 7.0 and later mount only the unified hierarchy; use box.cgroup v2, or an LXC before 7.0"},
	{regexp.MustCompile(`new[ug]idmap: [ug]id range .* not allowed`),
		"newuidmap/newgidmap refused the container's id map: the lab user's /etc/subuid and /etc/subgid must cover idmap.start/idmap.count (and the user's own id where it is mapped in)"},
	{regexp.MustCompile(`Permission denied - Failed to preserve (\w+) namespace`),
		"LXC could not open its child's %[1]s namespace (/proc/PID/ns/%[1]s: permission denied): the child was not dumpable then. Seen with LXC from git at 312976c (\"do prctl(PR_SET_DUMPABLE) after last uid/gid switch\") on kernel 6.12: bisect the LXC commits (labctl matrix bisect)"},
	{regexp.MustCompile(`Permission denied - Failed to unshare new user namespace`),
		"the guest's kernel refused LXC a new user namespace (permission denied): an AppArmor denial (see its line, if any), kernel.unprivileged_userns_clone=0 or user.max_user_namespaces=0"},
	{regexp.MustCompile(`(lxc-[a-z]+): not found`),
		"a level has no LXC (%[1]s not found): a container that holds containers needs labctl's image (image type local), not busybox"},
	{regexp.MustCompile(`Kernel panic - not syncing: (.*)`),
		"the VM's kernel panicked: %[1]s (console.log has the trace)"},
	{regexp.MustCompile(`No space left on device`),
		"a disk filled up (No space left on device): the VM's data disk (disk.size), its root disk, or the host's cache or lab directory"},
	{regexp.MustCompile(`Timed out while waiting for the machine to boot`),
		"the VM did not answer SSH within boot_timeout: console.log shows how far its boot got (a boot takes ~45 s under TCG, more on a busy host)"},
}

// explain fills a failed result's Why, Step and Evidence from its cell's directory under out
// (cells/<cell>/), where they are not filled yet (results of an older labctl, merged).
func (r *Result) explain(out string) {
	if r.Status != Failed {
		return
	}
	dir := filepath.Join(out, "cells", r.Cell)
	// Results of a labctl before 6da1a38 said "failed: " twice, and "  [BeforeSuite]".
	r.Reason = strings.TrimSpace(strings.TrimPrefix(r.Reason, "failed: "))
	if r.Why == nil {
		r.Why = explain(dir)
	}
	if r.Step == "" {
		r.Step = failedStep(dir)
	}
	if _, err := os.Stat(filepath.Join(dir, EvidenceDir)); err == nil && r.Evidence == "" {
		r.Evidence = filepath.Join("cells", r.Cell, EvidenceDir)
	}
}

// stepRE is how labctl up names the step that failed (in the cell's run.log).
var stepRE = regexp.MustCompile(`labctl up: step "([^"]+)" failed`)

// failedStep is the step of labctl up that failed in a cell, from its run.log ("" when up did
// not fail at a step).
func failedStep(cellDir string) string {
	step := ""
	scanLines(filepath.Join(cellDir, "run.log"), func(_ int, line string) bool {
		if m := stepRE.FindStringSubmatch(line); m != nil {
			step = m[1]
		}
		return true
	})
	return step
}

// maxWhys bounds the explanations of one cell.
const maxWhys = 4

// explain reads a failed cell's run.log and evidence/ and returns what known failures they show:
// one Why per explanation (its first line; the evidence files before run.log, their lines are
// the guest's own), at most maxWhys, the more specific failures (causes) before the general
// ones (symptoms).
func explain(cellDir string) []Why {
	var files []string
	ev, _ := filepath.Glob(filepath.Join(cellDir, EvidenceDir, "*"))
	sort.Strings(ev)
	files = append(files, ev...)
	files = append(files, filepath.Join(cellDir, "run.log"))
	var out []Why
	rank := map[string]int{}
	seen := map[string]bool{}
	for _, f := range files {
		rel, _ := filepath.Rel(cellDir, f)
		scanLines(f, func(n int, line string) bool {
			for i, sig := range signatures {
				m := sig.re.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				args := make([]any, len(m)-1)
				for i, g := range m[1:] {
					args[i] = g
				}
				says := fmt.Sprintf(sig.says, args...)
				if !seen[says] {
					seen[says], rank[says] = true, i
					out = append(out, Why{Says: says, Found: fmt.Sprintf("%s:%d: %s", rel, n, clip(strings.TrimSpace(stripANSI(line)), 300))})
				}
				break
			}
			return len(out) < maxWhys
		})
		if len(out) >= maxWhys {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Says] < rank[out[j].Says] })
	return out
}

// scanLines calls fn with each line of a file (numbered from 1) until fn returns false; a file
// that does not open has no lines.
func scanLines(path string, fn func(int, string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if !fn(n, sc.Text()) {
			return
		}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// keepEvidence copies the logs a cell's lab wrote since start (tmp/<lab>/logs/ under root: the
// console, Vagrant's and the provisioner's logs, each container's lxc-start log) into
// cellDir/evidence/, the last evidenceMax bytes of each: the lab is destroyed after a failed
// suite, its logs may be overwritten by the next run, and the cell's directory is what CI keeps.
func keepEvidence(root, lab, cellDir string, start time.Time) error {
	logs := filepath.Join(labdir.Of(root, lab), labdir.Logs)
	entries, err := os.ReadDir(logs)
	if err != nil {
		return nil // no logs: nothing to keep
	}
	dst := filepath.Join(cellDir, EvidenceDir)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.ModTime().Before(start) {
			continue
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := copyTail(filepath.Join(logs, e.Name()), filepath.Join(dst, e.Name()), evidenceMax); err != nil {
			return err
		}
	}
	return nil
}

// copyTail copies the last max bytes of src to dst (a regular file it creates or replaces).
func copyTail(src, dst string, max int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if off := info.Size() - max; off > 0 {
		if _, err := in.Seek(off, io.SeekStart); err != nil {
			return err
		}
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
