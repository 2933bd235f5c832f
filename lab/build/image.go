package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/release"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
)

// imagePackages make a container rootfs that runs systemd, gets an address by DHCP (ifupdown
// and the release's DHCP client, added from the release table) and can itself run
// containers (lxc, and busybox-static for the busybox template of nested ones).
var imagePackages = []string{
	"systemd", "systemd-sysv", "dbus", "iproute2", "kmod", "procps", "util-linux",
	"lxc", "xz-utils", "busybox-static", "libpam-systemd", "ifupdown",
	// labctl's template and the distribution's LXC configuration, to create containers of
	// labctl's image in this one (a tree deeper than two levels).
	"zstd", "lxc-templates",
	// lxc-copy of a directory-backed container (the user's own, nested) copies with rsync.
	"rsync",
}

// The files of an image: its rootfs as a tar compressed by zstd (made into a container by
// labctl's template, lxc.ImageTemplate), and LXC's image metadata as a tar compressed by xz.
const (
	RootfsFile = "rootfs.tar.zst"
	MetaFile   = "meta.tar.xz"
)

// LocalImage is an offline LXC image for labctl's template (image type local), cached on the
// host.
type LocalImage struct {
	Rootfs, Meta string
	Key          string
}

// ImageRecipe is what a container image depends on.
type ImageRecipe struct {
	Release string
	// LXCSuite is the apt suite LXC comes from ("" for the release's own), as in the box.
	LXCSuite string
	// LXC is LXC built from source, laid over the release's, as in the box (nil: none).
	LXC      *LXCBuild
	Packages []string
	// Overlay are the renderer's files for the inside of the container.
	Overlay []render.GuestFile
}

// ImageRecipeFor is the recipe of a container's image for spec s: the box's release, and the
// files rendered for the container's inside (whole files only) as its overlay.
func ImageRecipeFor(s *spec.Spec, inside []render.GuestFile) (ImageRecipe, error) {
	rel, err := release.Lookup(s.Box.Release)
	if err != nil {
		return ImageRecipe{}, err
	}
	pkgs := append(append([]string{}, imagePackages...), rel.Firewall, rel.DHCPClient)
	sort.Strings(pkgs)
	var overlay []render.GuestFile
	for _, f := range inside {
		if !f.IsLines() {
			overlay = append(overlay, f)
		}
	}
	// By path, so that the key does not depend on the order the files were rendered in.
	sort.SliceStable(overlay, func(i, j int) bool { return overlay[i].Path < overlay[j].Path })
	lxcSuite := s.LXC.Suite
	if lxcSuite == rel.Name {
		lxcSuite = ""
	}
	lb, err := LXCBuildFor(s)
	if err != nil {
		return ImageRecipe{}, err
	}
	return ImageRecipe{Release: rel.Name, LXCSuite: lxcSuite, LXC: lb, Packages: pkgs, Overlay: overlay}, nil
}

// LocalImages returns what the provisioner calls for a container's local image: the image
// built (or taken from the cache) for spec s with the container's rendered inside files.
// Progress goes to w, the build's output to log.
func LocalImages(s *spec.Spec, w, log io.Writer) func(ctx context.Context, inside []render.GuestFile) (LocalImage, error) {
	return func(ctx context.Context, inside []render.GuestFile) (LocalImage, error) {
		r, err := ImageRecipeFor(s, inside)
		if err != nil {
			return LocalImage{}, err
		}
		return BuildImage(ctx, r, w, log)
	}
}

// Key hashes the recipe, the overlay's content and the build script.
func (r ImageRecipe) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", r.Release, strings.Join(r.Packages, " "))
	if r.LXCSuite != "" {
		fmt.Fprintf(h, "lxc %s\n", r.LXCSuite)
	}
	if r.LXC != nil {
		fmt.Fprintf(h, "lxc source %s\n", r.LXC.Key())
	}
	for _, f := range r.Overlay {
		fmt.Fprintf(h, "%s %o\n%s\n", f.Path, f.Mode, f.Content)
	}
	for _, name := range sortedKeys(lxc.ImageMeta) {
		fmt.Fprintf(h, "%s\n%s\n", name, lxc.ImageMeta[name])
	}
	io.WriteString(h, buildImageScript)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// writeInputs writes what the build script bakes in: the overlay of files rendered for the
// container's inside, and LXC's image metadata.
func (r ImageRecipe) writeInputs(overlay, meta string) error {
	for _, f := range r.Overlay {
		p := filepath.Join(overlay, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Content, os.FileMode(f.Mode)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(meta, 0o755); err != nil {
		return err
	}
	for name, content := range lxc.ImageMeta {
		if err := os.WriteFile(filepath.Join(meta, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ImageCached reports whether the cache holds a finished build of the recipe's image.
func ImageCached(r ImageRecipe) bool {
	return verifyEntry(filepath.Join(host.CacheDir(), "images", r.Release+"-"+r.Key()), r.Key()) == nil
}

// BuildImage builds the image unless the cache has a finished, unchanged build of it; one
// build of a recipe runs at a time (a second waits, then takes its files). The files are
// private to the user who builds, in a private directory.
func BuildImage(ctx context.Context, r ImageRecipe, w, log io.Writer) (LocalImage, error) {
	key := r.Key()
	dir := filepath.Join(host.CacheDir(), "images", r.Release+"-"+key)
	img := LocalImage{Rootfs: filepath.Join(dir, RootfsFile), Meta: filepath.Join(dir, MetaFile), Key: key}
	e := cacheEntry{dir: dir, key: key, label: fmt.Sprintf("image %s-%s", r.Release, key), files: []string{RootfsFile, MetaFile}}
	built, err := e.ensure(ctx, w, "", func(work string) (string, error) {
		mirrors, err := hostReady("the container image", r.Release, "mmdebstrap", "xz", "zstd")
		if err != nil {
			return "", err
		}
		overlay, meta := filepath.Join(work, "overlay"), filepath.Join(work, "meta")
		if err := r.writeInputs(overlay, meta); err != nil {
			return "", err
		}
		env, err := r.scriptEnv(ctx, mirrors, overlay, meta, dir, w, log)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(w, "%s: building with mmdebstrap (~1 minute)\n", e.label)
		if err := runScript(ctx, imageScript, env, w, log); err != nil {
			return "", fmt.Errorf("build image: %w", err)
		}
		st, err := os.Stat(img.Rootfs)
		if err != nil {
			return "", fmt.Errorf("build image: the script ended without writing %s: %w", img.Rootfs, err)
		}
		return fmt.Sprintf(" (%d MB)", st.Size()>>20), nil
	})
	if err != nil {
		return img, err
	}
	if built {
		pruneSiblings(dir, w)
	}
	return img, nil
}

// scriptEnv is build-image.sh's environment: the recipe, the host's sources (and LXC's
// suite's), the pins, the tree of LXC built from source (built now if need be), where to
// write, how it runs.
func (r ImageRecipe) scriptEnv(ctx context.Context, mirrors []string, overlay, meta, dir string, w, log io.Writer) ([]string, error) {
	mode, err := modeEnv()
	if err != nil {
		return nil, err
	}
	su := Suites{LXC: r.LXCSuite}
	for _, extra := range su.Extra(r.Release) {
		mirrors = append(mirrors, host.SuiteLines(mirrors, r.Release, extra)...)
	}
	env := append([]string{"RELEASE=" + r.Release, "PACKAGES=" + strings.Join(r.Packages, " "), "OVERLAY=" + overlay,
		"META=" + meta, "OUT=" + dir, "MIRRORS=" + strings.Join(mirrors, "\n"), "APT_PINS=" + su.Pins(r.Release)}, mode...)
	if r.LXC != nil {
		tree, err := BuildLXC(ctx, *r.LXC, w, log)
		if err != nil {
			return nil, err
		}
		env = append(env, "LXC_TREE="+tree)
	}
	return env, nil
}
