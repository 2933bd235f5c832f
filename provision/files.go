package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/provision/remote"
)

// FileState compares a managed file on its target with the rendering.
func FileState(ctx context.Context, t remote.Target, f render.GuestFile) (done bool, change string, err error) {
	tmp := tempPath(f)
	if f.IsLines() {
		current, leftover, err := readFile(ctx, t, f)
		if err != nil {
			return false, "", err
		}
		next, change := linesContent(current, f)
		if next == current && !leftover {
			return true, "", nil
		}
		if change == "" {
			change = "rewrite " + f.Path + " (an interrupted write left " + tmp + ")"
		}
		return false, change, nil
	}
	sum := sha256.Sum256(f.Content)
	want := fmt.Sprintf("%s %s %o", hex.EncodeToString(sum[:]), f.Owner, f.Mode)
	line := remote.Shf("if [ -e %s ]; then echo leftover; fi; if [ -f %s ]; then echo $(sha256sum < %s | cut -d' ' -f1) $(stat -c '%%U:%%G %%a' %s); fi", tmp, f.Path, f.Path, f.Path)
	got, err := remote.Sh(ctx, t, true, line)
	if err != nil {
		return false, "", err
	}
	leftover := strings.HasPrefix(got, "leftover")
	got = strings.TrimSpace(strings.TrimPrefix(got, "leftover"))
	switch {
	case got == "":
		return false, "create " + f.Path, nil
	case got != want:
		return false, "rewrite " + f.Path + " (content, owner or mode differs)", nil
	case leftover:
		return false, "rewrite " + f.Path + " (an interrupted write left " + tmp + ")", nil
	}
	return true, "", nil
}

// tempPath is where WriteFile stages a file before renaming it over the target.
func tempPath(f render.GuestFile) string { return f.Path + ".labctl-tmp" }

// readFile reads a lines file (empty when it does not exist), and whether an interrupted
// write left its temporary file.
func readFile(ctx context.Context, t remote.Target, f render.GuestFile) (string, bool, error) {
	r, err := remote.Must(ctx, t, remote.Cmd{Line: remote.Shf("if [ -e %s ]; then echo leftover; else echo clean; fi; cat %s 2>/dev/null || true", tempPath(f), f.Path), Sudo: true})
	if err != nil {
		return "", false, err
	}
	state, content, _ := strings.Cut(r.Stdout, "\n")
	return content, state == "leftover", nil
}

// linesContent is what a file of ensured lines must become: each rendered line present once;
// the lab's own lines that are no longer rendered (those matching f.Owns: a changed fstab
// entry for the mount point, another subordinate range of the user) removed; the start of a
// line an interrupted write left (a last line without newline that begins a missing line)
// dropped; every other line of the file kept as it is. change says what differs ("" when
// nothing does).
func linesContent(current string, f render.GuestFile) (next, change string) {
	lines, cut := splitCut(current, f.Lines)
	kept, removed := keepLines(lines, f)
	have := map[string]bool{}
	for _, l := range kept {
		have[strings.TrimRight(l, " \t\r")] = true
	}
	added := 0
	for _, l := range f.Lines {
		if !have[l] {
			kept = append(kept, l)
			added++
		}
	}
	next = strings.Join(kept, "\n") + "\n"
	if len(kept) == 0 {
		next = ""
	}
	var what []string
	if added > 0 {
		what = append(what, fmt.Sprintf("append %d line(s)", added))
	}
	if removed > 0 {
		what = append(what, fmt.Sprintf("remove %d stale line(s)", removed))
	}
	if cut != "" {
		what = append(what, "drop a cut line")
	}
	if len(what) > 0 {
		change = strings.Join(what, ", ") + " in " + f.Path
	} else if next != current {
		change = "end " + f.Path + " with a newline"
	}
	return next, change
}

// splitCut splits a file into its whole lines; cut is a last line without newline that begins
// one of want (an interrupted write left it), dropped with the empty string after a final
// newline.
func splitCut(current string, want []string) (lines []string, cut string) {
	if current != "" {
		lines = strings.Split(current, "\n")
	}
	if len(lines) > 0 && !strings.HasSuffix(current, "\n") {
		last := lines[len(lines)-1]
		for _, l := range want {
			if last != "" && last != l && strings.HasPrefix(l, last) {
				cut = last
			}
		}
	}
	if len(lines) > 0 && (strings.HasSuffix(current, "\n") || cut != "") {
		lines = lines[:len(lines)-1]
	}
	return lines, cut
}

// keepLines keeps the lines of a file that stay: not the lab's stale ones (f.Owns, not
// rendered), not a second copy of a rendered line; it counts those it removed.
func keepLines(lines []string, f render.GuestFile) (kept []string, removed int) {
	var owns *regexp.Regexp
	if f.Owns != "" {
		owns = regexp.MustCompile(f.Owns)
	}
	want := map[string]bool{}
	for _, l := range f.Lines {
		want[l] = true
	}
	have := map[string]bool{}
	for _, l := range lines {
		key := strings.TrimRight(l, " \t\r")
		if owns != nil && owns.MatchString(key) && !want[key] || have[key] && want[key] {
			removed++ // stale, or a second copy of a rendered line
			continue
		}
		have[key] = true
		kept = append(kept, l)
	}
	return kept, removed
}

// WriteFile makes the file on its target exactly the rendering, atomically (a temporary file
// beside it, then a rename): a whole file with its owner and mode; a file of ensured lines as
// linesContent says, its other lines kept.
func WriteFile(ctx context.Context, t remote.Target, f render.GuestFile) error {
	content := f.Content
	if f.IsLines() {
		current, _, err := readFile(ctx, t, f)
		if err != nil {
			return err
		}
		next, _ := linesContent(current, f)
		content = []byte(next)
	}
	dir := path.Dir(f.Path)
	tmp := tempPath(f)
	mkdir := remote.Shf("mkdir -p %s", dir)
	if owner := strings.SplitN(f.Owner, ":", 2)[0]; owner != "root" {
		// created as the owner, so that no directory of the user's ends up root's
		mkdir = remote.Shf("runuser -u %s -- mkdir -p %s", owner, dir)
	}
	// A target that is a mount point itself (a bind-mounted file) cannot be renamed over: it
	// is then written in place.
	line := mkdir + remote.Shf(" && cat > %s && chown %s %s && chmod %s %s && { mv -f %s %s 2>/dev/null || { cat %s > %s && rm -f %s; }; }",
		tmp, f.Owner, tmp, fmt.Sprintf("%o", f.Mode), tmp, tmp, f.Path, tmp, f.Path, tmp)
	_, err := remote.Must(ctx, t, remote.Cmd{Line: line, Sudo: true, Stdin: bytes.NewReader(content)})
	return err
}

// fileStep is the step that makes one rendered file exactly so. Its check and apply render
// the file again, for the guest's LXC version and the data disk's UUID as they are then.
func (p *Provisioner) fileStep(laid render.GuestFile) Step {
	current := func(ctx context.Context) (render.GuestFile, error) {
		g, err := p.render(ctx)
		if err != nil {
			return render.GuestFile{}, err
		}
		for _, f := range g {
			if f.Target == laid.Target && f.Path == laid.Path {
				return f, nil
			}
		}
		return render.GuestFile{}, fmt.Errorf("no rendered file %s on %q", laid.Path, laid.Target)
	}
	return Step{
		Name: laid.Step,
		Check: func(ctx context.Context) (bool, string, error) {
			f, err := current(ctx)
			if err != nil {
				return false, "", err
			}
			return FileState(ctx, p.targetOf(f), f)
		},
		Apply: func(ctx context.Context) error {
			f, err := current(ctx)
			if err != nil {
				return err
			}
			if err := WriteFile(ctx, p.targetOf(f), f); err != nil {
				return err
			}
			if f.Target == "" && strings.HasPrefix(f.Path, "/etc/systemd/system/") {
				// systemd reads a unit or drop-in it has loaded again only when told.
				_, err = remote.Must(ctx, p.VM, remote.Cmd{Line: "systemctl daemon-reload", Sudo: true})
			}
			if f.Target == "" && strings.HasPrefix(f.Path, "/etc/ssh/sshd_config.d/") {
				// sshd reads its configuration at a reload (sessions running keep theirs).
				_, err = remote.Must(ctx, p.VM, remote.Cmd{Line: "sshd -t && systemctl reload ssh", Sudo: true})
			}
			return err
		},
	}
}
