// Package build makes what a lab boots and unpacks, on the host and offline: libvirt boxes
// and container images, with mmdebstrap from the host's own Debian mirror, cached under
// labctl's cache directory keyed by their recipe. It knows nothing of Vagrant or of the guest.
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
	"sort"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/release"
	"github.com/labctl/labctl/lab/spec"
)

//go:embed scripts/build-box.sh
var buildBoxScript string

//go:embed scripts/build-image.sh
var buildImageScript string

// boxPackages are baked into every box: installing them in the guest under TCG took ~10
// minutes (update-initramfs), so the provisioner only checks for them.
var boxPackages = []string{
	"systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "sudo", "iproute2", "btrfs-progs",
	"linux-image-amd64", "initramfs-tools", "uidmap", "qemu-guest-agent", "kmod", "procps", "util-linux",
	// scp for uploads over SSH (go-scp runs `scp -t` in the guest): openssh-server stopped
	// pulling in openssh-client with forky.
	"openssh-client",
	// LXC and what an unprivileged, nested lab needs of it in the guest.
	"lxc", "lxc-templates", "xz-utils", "libpam-systemd", "dbus-user-session", "dnsmasq-base",
	// zstd for labctl's LXC template, which unpacks labctl's images (rootfs.tar.zst).
	"zstd",
	// AppArmor userspace, so that containers are confined as on a stock install (LXC's
	// profiles are loaded at boot); busybox-static for the user's own busybox containers.
	"apparmor", "busybox-static",
}

// BoxRecipe is everything a self-built box depends on; its Key names the cached build.
type BoxRecipe struct {
	Release string
	// KernelSuite is the apt suite the kernel comes from ("" for the release's own).
	KernelSuite string
	// LXCSuite is the apt suite LXC comes from ("" for the release's own).
	LXCSuite string
	// LXC is LXC built from source, laid over the release's (nil: none).
	LXC *LXCBuild
	// Flavour names the box, its cache entry and its volumes (spec.BoxFlavour).
	Flavour  string
	Packages []string
	User     string
	DiskGB   int
}

// BoxRecipeFor is the recipe of the box a spec boots (box.release).
func BoxRecipeFor(s *spec.Spec) (BoxRecipe, error) {
	rel, err := release.Lookup(s.Box.Release)
	if err != nil {
		return BoxRecipe{}, err
	}
	pkgs := append(append([]string{}, boxPackages...), rel.Firewall)
	if s.Box.Cgroup == "v1" {
		// On cgroup v1 the lab user's unprivileged containers need cgroups of the user's own
		// in every hierarchy: pam_cgfs makes them at login.
		pkgs = append(pkgs, "libpam-cgfs")
	}
	sort.Strings(pkgs)
	if _, err := rel.KernelOf(s.Box.Kernel); err != nil {
		return BoxRecipe{}, err
	}
	lxcSuite := s.LXC.Suite
	if lxcSuite == rel.Name {
		lxcSuite = ""
	}
	lb, err := LXCBuildFor(s)
	if err != nil {
		return BoxRecipe{}, err
	}
	return BoxRecipe{Release: rel.Name, KernelSuite: s.Box.Kernel, LXCSuite: lxcSuite, LXC: lb, Flavour: s.BoxFlavour(), Packages: pkgs, User: s.User, DiskGB: 8}, nil
}

// suites is where the box's kernel and LXC come from.
func (r BoxRecipe) suites() Suites { return Suites{Kernel: r.KernelSuite, LXC: r.LXCSuite} }

// Key is a short hash of the recipe and the build script: a rebuild happens only when it
// changes.
func (r BoxRecipe) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%d\n", r.Release, strings.Join(r.Packages, " "), r.User, r.DiskGB)
	if r.KernelSuite != "" {
		fmt.Fprintf(h, "kernel %s\n", r.KernelSuite)
	}
	if r.LXCSuite != "" {
		fmt.Fprintf(h, "lxc %s\n", r.LXCSuite)
	}
	if r.LXC != nil {
		fmt.Fprintf(h, "lxc source %s\n", r.LXC.Key())
	}
	if p := r.suites().Pins(r.Release); p != "" {
		fmt.Fprintf(h, "pins\n%s", p)
	}
	io.WriteString(h, buildBoxScript)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Name is the Vagrant box name: labctl/<release>, or labctl/<release>-backports for a box
// whose kernel comes from the backports suite.
func (r BoxRecipe) Name() string { return "labctl/" + r.Flavour }

// Dir is the box's cache directory.
func (r BoxRecipe) Dir() string {
	return filepath.Join(host.CacheDir(), "boxes", r.Flavour+"-"+r.Key())
}

// File is the cached box file.
func (r BoxRecipe) File() string { return filepath.Join(r.Dir(), "labctl.box") }

// Tests replace these: the scripts that run (the cache keys hash the embedded ones whatever
// runs) and the check that the host can build (root, tools, apt sources).
var (
	boxScript   = buildBoxScript
	imageScript = buildImageScript
	hostReady   = checkHost
)

// checkHost returns the host's apt sources for release when the host can build what (the
// tools; as a normal user, mmdebstrap's unshare mode and a subordinate id range); else an
// error saying what to do, and who must do it.
func checkHost(what, release string, tools ...string) ([]string, error) {
	for _, tool := range tools {
		if host.LookTool(tool) == "" {
			return nil, fmt.Errorf("building %s needs %s: run `make deps` (as root: `sudo make deps`)", what, tool)
		}
	}
	if _, err := host.InUserNS(); err != nil {
		return nil, fmt.Errorf("building %s as a normal user (mmdebstrap --mode=unshare): %w", what, err)
	}
	return host.AptSources(release)
}

// modeEnv is how the build scripts run here: MODE (mmdebstrap's root or unshare) and NS, the
// prefix that runs a command over the built tree's owners as they are (empty for root).
func modeEnv() ([]string, error) {
	ns, err := host.InUserNS()
	if err != nil {
		return nil, err
	}
	return []string{"MODE=" + host.BuildMode(), "NS=" + strings.Join(ns, " ")}, nil
}

// BuildBox builds the box unless the cache has a finished, unchanged build of it, and returns
// the box file. One build of a recipe runs at a time: a second waits for it, then takes its
// box. The box, its key and the directory are private to the user who builds (the box
// carries the key).
// Progress lines and timings go to w; the build's full output to log.
func BuildBox(ctx context.Context, r BoxRecipe, w, log io.Writer) (string, error) {
	e := cacheEntry{dir: r.Dir(), key: r.Key(), label: "box " + r.Name(), files: []string{"labctl.box", "vagrant_key", "vagrant_key.pub"}}
	built, err := e.ensure(ctx, w, " ("+r.File()+")", func(work string) (string, error) {
		mirrors, err := hostReady("box "+r.Name(), r.Release, "mmdebstrap", "qemu-img", "mkfs.ext4", "ssh-keygen")
		if err != nil {
			return "", err
		}
		key := filepath.Join(e.dir, "vagrant_key")
		// A key of this box's own: never Vagrant's well-known insecure key.
		if out, err := host.Command(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labctl-"+r.Release, "-f", key).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
		env, err := r.scriptEnv(mirrors, key, work)
		if err != nil {
			return "", err
		}
		if r.LXC != nil {
			tree, err := BuildLXC(ctx, *r.LXC, w, log)
			if err != nil {
				return "", err
			}
			env = append(env, "LXC_TREE="+tree)
		}
		fmt.Fprintf(w, "%s: building with mmdebstrap (key %s; takes ~2 minutes)\n", e.label, e.key)
		if err := runScript(ctx, boxScript, env, w, log); err != nil {
			return "", fmt.Errorf("build box %s: %w", r.Name(), err)
		}
		st, err := os.Stat(r.File())
		if err != nil {
			return "", fmt.Errorf("build box %s: the script ended without writing %s: %w", r.Name(), r.File(), err)
		}
		return fmt.Sprintf(" (%d MB)", st.Size()>>20), nil
	})
	if err != nil {
		return "", err
	}
	if built {
		pruneSiblings(e.dir, w)
	}
	return r.File(), nil
}

// scriptEnv is build-box.sh's environment: the recipe, the host's sources (and those of the
// kernel's and LXC's suites), the pins, the key, where to work and write, and how it runs.
func (r BoxRecipe) scriptEnv(mirrors []string, key, work string) ([]string, error) {
	su := r.suites()
	for _, extra := range su.Extra(r.Release) {
		mirrors = append(mirrors, host.SuiteLines(mirrors, r.Release, extra)...)
	}
	late, merged := "", ""
	if su.CrossKernel(r.Release) {
		late = "1"
		if r.Release == "bullseye" {
			merged = "1" // bullseye has no merged /usr; kernels from 6.12 on keep their modules in /usr/lib/modules
		}
	}
	mode, err := modeEnv()
	if err != nil {
		return nil, err
	}
	env := []string{
		"RELEASE=" + r.Release, "KERNEL_SUITE=" + r.KernelSuite, "PACKAGES=" + strings.Join(r.Packages, " "), "LAB_USER=" + r.User,
		"PUBKEY=" + key + ".pub", "PRIVKEY=" + key, "OUT=" + r.File(), "WORK=" + work,
		fmt.Sprintf("DISK_GB=%d", r.DiskGB), "MIRRORS=" + strings.Join(mirrors, "\n"),
		"APT_PINS=" + su.Pins(r.Release), "KERNEL_LATE=" + late, "MERGED_USR=" + merged,
	}
	return append(env, mode...), nil
}
