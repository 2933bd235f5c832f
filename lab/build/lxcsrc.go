package build

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

//go:embed scripts/build-lxc.sh
var buildLXCScript string

// lxcScript is the script that runs (tests replace it; the key hashes the embedded one).
var lxcScript = buildLXCScript

// LXCBuild is LXC built from the user's source for a release's userland: a tree (a tar of what
// the build installs under /usr) that a box and its images lay over the release's own LXC.
// It is cached by the source (a tarball's checksum, a checkout's commit), the release and
// the build script: built once, shared by every lab and cell.
type LXCBuild struct {
	Release string
	// Source is the tarball or the git checkout, absolute.
	Source string
	// Commit is the checkout's commit that Ref resolved to ("" for a tarball); Sum the
	// tarball's SHA-256 ("" for a checkout).
	Ref, Commit, Sum string
}

// LXCBuildFor is the LXC build of spec s (nil when LXC comes from apt): the source resolved
// now, so that the key follows what is there (a new commit, another tarball).
func LXCBuildFor(s *spec.Spec) (*LXCBuild, error) {
	if s.LXC.Source == "" {
		return nil, nil
	}
	src, err := filepath.Abs(s.LXC.Source)
	if err != nil {
		return nil, err
	}
	b := &LXCBuild{Release: s.Box.Release, Source: src, Ref: s.LXC.Ref}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("lxc.source: %w", err)
	}
	if st.IsDir() {
		if b.Ref == "" {
			b.Ref = "HEAD"
		}
		out, err := host.Command(context.Background(), "git", "-C", src, "rev-parse", "--verify", "--quiet", b.Ref+"^{commit}").Output()
		if err != nil {
			return nil, fmt.Errorf("lxc.ref: %q is not a commit of the checkout %s (git rev-parse: %v): give a commit or a tag it has (`git -C %s log --oneline`)", b.Ref, src, err, src)
		}
		b.Commit = strings.TrimSpace(string(out))
		return b, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("lxc.source: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("lxc.source: %w", err)
	}
	b.Sum = hex.EncodeToString(h.Sum(nil))
	return b, nil
}

// Key hashes the release, the source's identity and the build script.
func (b LXCBuild) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\ncommit %s\nsum %s\n", b.Release, b.Commit, b.Sum)
	io.WriteString(h, buildLXCScript)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// What says which source this is, for progress lines and reports.
func (b LXCBuild) What() string {
	if b.Commit != "" {
		return fmt.Sprintf("%s at %s (%.12s)", b.Source, b.Ref, b.Commit)
	}
	return fmt.Sprintf("%s (sha256 %.12s)", b.Source, b.Sum)
}

// Dir is the build's cache directory; File its tree.
func (b LXCBuild) Dir() string {
	return filepath.Join(host.CacheDir(), "lxc", b.Release+"-"+b.Key())
}

// File is the cached tree.
func (b LXCBuild) File() string { return filepath.Join(b.Dir(), "lxc-tree.tar") }

// BuildLXC builds LXC unless the cache has a finished build of the same source, release and
// script, and returns the tree. Progress goes to w, the build's whole output to log; a failed
// build ends with its last lines (the compiler's) and says where the log is.
func BuildLXC(ctx context.Context, b LXCBuild, w, log io.Writer) (string, error) {
	e := cacheEntry{dir: b.Dir(), key: b.Key(), label: "LXC " + b.Release + "-" + b.Key(), files: []string{"lxc-tree.tar"}}
	// Older builds stay: another source for the same release is another build, not an older one.
	_, err := e.ensure(ctx, w, " ("+b.What()+")", func(work string) (string, error) {
		tools := []string{"mmdebstrap"}
		if b.Commit != "" {
			tools = append(tools, "git")
		}
		mirrors, err := hostReady("LXC from source", b.Release, tools...)
		if err != nil {
			return "", err
		}
		src, err := b.sourceTar(ctx, work)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(w, "%s: building %s for %s on the host (a build chroot; a few minutes)\n", e.label, b.What(), b.Release)
		mode, err := modeEnv()
		if err != nil {
			return "", err
		}
		env := append([]string{"RELEASE=" + b.Release, "SRC=" + src, "OUT=" + b.File(), "WORK=" + work,
			"MIRRORS=" + strings.Join(mirrors, "\n")}, mode...)
		if err := runScript(ctx, lxcScript, env, w, log); err != nil {
			return "", fmt.Errorf("build LXC from %s for %s: %w", b.What(), b.Release, err)
		}
		return "", nil
	})
	return b.File(), err
}

// sourceTar is the source as one tarball the build chroot takes: the release tarball itself,
// or `git archive` of the commit (what is committed, nothing of the work tree).
func (b LXCBuild) sourceTar(ctx context.Context, work string) (string, error) {
	if b.Commit == "" {
		return b.Source, nil
	}
	out := filepath.Join(work, "lxc-"+b.Commit[:12]+".tar")
	if msg, err := host.Command(ctx, "git", "-C", b.Source, "archive", "--format=tar", "--prefix=lxc/", "-o", out, b.Commit).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s of %s: %v: %s", b.Commit, b.Source, err, msg)
	}
	return out, nil
}
