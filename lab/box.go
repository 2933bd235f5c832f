package lab

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
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
	// LXC and what an unprivileged, nested lab needs of it in the guest.
	"lxc", "lxc-templates", "xz-utils", "libpam-systemd", "dbus-user-session", "dnsmasq-base",
}

// releaseFirewall is what lxc-net needs for its NAT on each release.
var releaseFirewall = map[string]string{"bullseye": "iptables", "bookworm": "nftables", "trixie": "nftables"}

// BoxRecipe is everything a self-built box depends on; its Key names the cached build.
type BoxRecipe struct {
	Release  string
	Packages []string
	User     string
	DiskGB   int
}

// BoxRecipeFor is the recipe of the box a spec boots (box.release).
func BoxRecipeFor(s *Spec) BoxRecipe {
	pkgs := append(append([]string{}, boxPackages...), releaseFirewall[s.Box.Release])
	sort.Strings(pkgs)
	return BoxRecipe{Release: s.Box.Release, Packages: pkgs, User: s.User, DiskGB: 8}
}

// Key is a short hash of the recipe and the build script: a rebuild happens only when it
// changes.
func (r BoxRecipe) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%d\n", r.Release, strings.Join(r.Packages, " "), r.User, r.DiskGB)
	io.WriteString(h, buildBoxScript)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Name is the Vagrant box name.
func (r BoxRecipe) Name() string { return "labctl/" + r.Release }

// Dir is the box's cache directory.
func (r BoxRecipe) Dir() string {
	return filepath.Join(CacheDir(), "boxes", r.Release+"-"+r.Key())
}

// File is the cached box file.
func (r BoxRecipe) File() string { return filepath.Join(r.Dir(), "labctl.box") }

// BuildBox builds the box unless the cache has it, and returns the box file. Progress lines
// and timings go to w; the build's full output to log.
func BuildBox(ctx context.Context, r BoxRecipe, w, log io.Writer) (string, error) {
	if _, err := os.Stat(r.File()); err == nil {
		fmt.Fprintf(w, "box %s: cached (%s)\n", r.Name(), r.File())
		return r.File(), nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("building box %s needs root (mmdebstrap --mode=root, mkfs -d): run as root, or `sudo labctl box build --release %s`", r.Name(), r.Release)
	}
	for _, tool := range []string{"mmdebstrap", "qemu-img", "mkfs.ext4", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("building box %s needs %s: run `make deps`", r.Name(), tool)
		}
	}
	mirrors, err := AptSources(r.Release)
	if err != nil {
		return "", err
	}
	start := time.Now()
	dir := r.Dir()
	work := dir + ".work"
	os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	key := filepath.Join(dir, "vagrant_key")
	if _, err := os.Stat(key); err != nil {
		// A key of this box's own: never Vagrant's well-known insecure key.
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labctl-"+r.Release, "-f", key).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	fmt.Fprintf(w, "box %s: building with mmdebstrap (key %s; takes ~2 minutes)\n", r.Name(), r.Key())
	env := []string{
		"RELEASE=" + r.Release, "PACKAGES=" + strings.Join(r.Packages, " "), "LAB_USER=" + r.User,
		"PUBKEY=" + key + ".pub", "PRIVKEY=" + key, "OUT=" + r.File(), "WORK=" + work,
		fmt.Sprintf("DISK_GB=%d", r.DiskGB), "MIRRORS=" + strings.Join(mirrors, "\n"),
	}
	if err := runScript(ctx, buildBoxScript, env, w, log); err != nil {
		return "", fmt.Errorf("build box %s: %w", r.Name(), err)
	}
	st, _ := os.Stat(r.File())
	fmt.Fprintf(w, "box %s: built in %s (%d MB)\n", r.Name(), time.Since(start).Round(time.Second), st.Size()>>20)
	pruneSiblings(dir, w)
	return r.File(), nil
}

// pruneSiblings removes older builds of the same release (dir is <release>-<key>): a rebuild
// happens only when the recipe changed, so they will not be used again.
func pruneSiblings(dir string, w io.Writer) {
	base := filepath.Base(dir)
	release := base[:strings.LastIndex(base, "-")]
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), release+"-*"))
	for _, o := range old {
		if o != dir && !strings.HasSuffix(o, ".work") {
			if os.RemoveAll(o) == nil {
				fmt.Fprintf(w, "  removed the older build %s\n", o)
			}
		}
	}
}

// runScript runs an embedded bash script; "==>" lines go to w, everything to log.
func runScript(ctx context.Context, script string, env []string, w, log io.Writer) error {
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	var tailBuf tailWriter
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		var line strings.Builder
		for {
			n, err := pr.Read(buf)
			for _, b := range buf[:n] {
				if b == '\n' {
					l := line.String()
					line.Reset()
					if log != nil {
						fmt.Fprintln(log, l)
					}
					tailBuf.add(l)
					if strings.HasPrefix(l, "==> ") {
						fmt.Fprintln(w, "  "+strings.TrimPrefix(l, "==> "))
					}
				} else {
					line.WriteByte(b)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("%v; last output:\n%s", err, strings.Join(tailBuf.lines, "\n"))
	}
	return nil
}

type tailWriter struct{ lines []string }

func (t *tailWriter) add(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > 15 {
		t.lines = t.lines[1:]
	}
}

// EnsureBox builds the spec's box if needed and adds it to Vagrant unless Vagrant already
// has this very build. It returns the box name and recipe key.
func EnsureBox(ctx context.Context, s *Spec, v *Vagrant, w io.Writer) (string, error) {
	if s.Box.Release == "" {
		return s.Box.Name, nil // an existing box: Vagrant fetches or has it
	}
	r := BoxRecipeFor(s)
	file, err := BuildBox(ctx, r, w, v.Log)
	if err != nil {
		return "", err
	}
	marker := filepath.Join(VagrantHome(), "labctl-box-"+r.Release)
	if data, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(data)) == r.Key() {
		if list, err := v.BoxList(ctx); err == nil && strings.Contains(list, r.Name()+" ") {
			return r.Key(), nil
		}
	}
	start := time.Now()
	if err := v.BoxAdd(ctx, r.Name(), file); err != nil {
		return "", err
	}
	if err := os.WriteFile(marker, []byte(r.Key()+"\n"), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "box %s: added to Vagrant in %s\n", r.Name(), time.Since(start).Round(time.Second))
	pruneBoxVolumes(ctx, r.Release, w)
	return r.Key(), nil
}

// pruneBoxVolumes deletes the copies of earlier builds of a release's box that vagrant-libvirt
// uploaded into the pool (~800 MB each; the new build is uploaded at its first `up`). It keeps
// them all while any labctl VM is defined, since one may be backed by them.
func pruneBoxVolumes(ctx context.Context, release string, w io.Writer) {
	doms, err := virsh(ctx, "list", "--all", "--name")
	if err != nil {
		return // no libvirt: nothing uploaded
	}
	prefix := "labctl-VAGRANTSLASH-" + release + "_vagrant_box_image_"
	if strings.Contains(doms, "labctl-") {
		fmt.Fprintf(w, "box labctl/%s: older box volumes kept in pool %s while a labctl VM exists\n", release, Pool)
		return
	}
	gone, err := DeleteVolumes(ctx, prefix)
	if err != nil {
		fmt.Fprintf(w, "box labctl/%s: could not prune older box volumes: %v\n", release, err)
	}
	for _, g := range gone {
		fmt.Fprintf(w, "  removed the older box volume %s from pool %s\n", g, Pool)
	}
}
