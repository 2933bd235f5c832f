package spec

import (
	"os"
	"path/filepath"
	"strings"
)

// sourceName names an LXC source in a box's name: the tarball's or the checkout's base name
// (lowercase, runs of other characters as one dash) and the ref.
func sourceName(src, ref string) string {
	base := filepath.Base(src)
	for _, ext := range tarballExts {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.TrimPrefix(base, "lxc-") // the box's name says lxc- already
	if ref != "" {
		base += "-" + ref
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(base) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// validateLXCSource checks lxc.source and lxc.ref: a box labctl builds, no lxc.suite beside
// it, a tarball or a git checkout that is there, a ref only for a checkout.
func (s *Spec) validateLXCSource(bad badFunc) {
	src := s.LXC.Source
	if src == "" {
		if s.LXC.Ref != "" {
			bad("lxc.ref", s.LXC.Ref, "needs lxc.source (a git checkout): set it, or drop lxc.ref")
		}
		return
	}
	switch {
	case s.Box.Release == "":
		bad("lxc.source", src, "needs box.release: labctl builds LXC into the boxes it builds; drop it for box.name")
		return
	case s.LXC.Suite != "" && s.LXC.Suite != s.Box.Release:
		bad("lxc.source", src, "and lxc.suite %s both say where LXC comes from: keep one", s.LXC.Suite)
		return
	}
	st, err := os.Stat(src)
	switch {
	case err != nil:
		bad("lxc.source", src, "is not there (%v): give a release tarball or a git checkout, relative to the directory labctl runs in or absolute", err)
	case st.IsDir():
		if _, err := os.Stat(filepath.Join(src, ".git")); err != nil {
			bad("lxc.source", src, "is a directory but not a git checkout (no .git): give a checkout, or a release tarball")
		}
	case !isTarball(src):
		bad("lxc.source", src, "is neither a release tarball (.tar, .tar.gz, .tgz, .tar.xz, .tar.bz2, .tar.zst) nor a git checkout")
	case s.LXC.Ref != "":
		bad("lxc.ref", s.LXC.Ref, "is for a git checkout; lxc.source %s is a tarball: drop lxc.ref", src)
	}
}

// tarballExts are the names a source tarball may end in (longest first).
var tarballExts = []string{".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tgz", ".tar"}

// isTarball says whether a file's name is a tarball's.
func isTarball(name string) bool {
	for _, ext := range tarballExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}
