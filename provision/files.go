package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/provision/remote"
)

// FileState compares a managed file on its target with the rendering.
func FileState(ctx context.Context, t remote.Target, f render.GuestFile) (done bool, change string, err error) {
	if f.IsLines() {
		missing, err := MissingLines(ctx, t, f)
		if err != nil {
			return false, "", err
		}
		if len(missing) == 0 {
			return true, "", nil
		}
		return false, fmt.Sprintf("append %d line(s) to %s", len(missing), f.Path), nil
	}
	sum := sha256.Sum256(f.Content)
	want := fmt.Sprintf("%s %s %o", hex.EncodeToString(sum[:]), f.Owner, f.Mode)
	tmp := tempPath(f)
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

// tempPath is where WriteFile stages a whole file before renaming it over the target.
func tempPath(f render.GuestFile) string { return f.Path + ".labctl-tmp" }

// MissingLines returns the lines of f not yet in its file, each compared whole.
func MissingLines(ctx context.Context, t remote.Target, f render.GuestFile) ([]string, error) {
	r, err := remote.Must(ctx, t, remote.Cmd{Line: remote.Shf("cat %s 2>/dev/null || true", f.Path), Sudo: true})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(r.Stdout, "\n") {
		have[strings.TrimRight(l, " \t\r")] = true
	}
	var missing []string
	for _, l := range f.Lines {
		if !have[l] {
			missing = append(missing, l)
		}
	}
	return missing, nil
}

// partialLine returns the file's last line when it has no newline and is the beginning of
// one of the lines still to add: what an interrupted append leaves. A last line of the
// file's own that merely lacks its newline is not that, and is kept.
func partialLine(content string, missing []string) string {
	if content == "" || strings.HasSuffix(content, "\n") {
		return ""
	}
	last := content[strings.LastIndex(content, "\n")+1:]
	for _, m := range missing {
		if strings.HasPrefix(m, last) {
			return last
		}
	}
	return ""
}

// WriteFile makes the file on its target exactly the rendering: a whole file is replaced
// atomically with its owner and mode; lines are appended only when missing (so a second run
// never duplicates them).
func WriteFile(ctx context.Context, t remote.Target, f render.GuestFile) error {
	if f.IsLines() {
		missing, err := MissingLines(ctx, t, f)
		if err != nil || len(missing) == 0 {
			return err
		}
		// Make sure the file ends with a newline before appending: drop the start of a line an
		// interrupted append left (the line is appended whole again), else end the file's own
		// last line.
		line := remote.Shf("f=%s; touch \"$f\"; ", f.Path)
		if cut, err := cutPartialLine(ctx, t, f, missing); err != nil {
			return err
		} else if cut > 0 {
			line += fmt.Sprintf("truncate -s -%d \"$f\"; ", cut)
		}
		line += "if [ -s \"$f\" ] && [ \"$(tail -c1 \"$f\" | od -An -c | tr -d ' ')\" != '\\n' ]; then echo >> \"$f\"; fi; cat >> \"$f\""
		_, err = remote.Must(ctx, t, remote.Cmd{Line: line, Sudo: true, Stdin: strings.NewReader(strings.Join(missing, "\n") + "\n")})
		return err
	}
	dir := path.Dir(f.Path)
	tmp := tempPath(f)
	mkdir := remote.Shf("mkdir -p %s", dir)
	if owner := strings.SplitN(f.Owner, ":", 2)[0]; owner != "root" {
		// created as the owner, so that no directory of the user's ends up root's
		mkdir = remote.Shf("runuser -u %s -- mkdir -p %s", owner, dir)
	}
	line := mkdir + remote.Shf(" && cat > %s && chown %s %s && chmod %s %s && mv -f %s %s",
		tmp, f.Owner, tmp, fmt.Sprintf("%o", f.Mode), tmp, tmp, f.Path)
	_, err := remote.Must(ctx, t, remote.Cmd{Line: line, Sudo: true, Stdin: bytes.NewReader(f.Content)})
	return err
}

// cutPartialLine is how many bytes of an interrupted append end the file (0: none).
func cutPartialLine(ctx context.Context, t remote.Target, f render.GuestFile, missing []string) (int, error) {
	r, err := remote.Must(ctx, t, remote.Cmd{Line: remote.Shf("cat %s 2>/dev/null || true", f.Path), Sudo: true})
	if err != nil {
		return 0, err
	}
	return len(partialLine(r.Stdout, missing)), nil
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
			return WriteFile(ctx, p.targetOf(f), f)
		},
	}
}
