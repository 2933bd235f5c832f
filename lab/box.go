package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/provider"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// EnsureBox builds the lab's box if needed and adds it to Vagrant unless Vagrant already has
// this very build, whole (its box.img of the box file's size). It returns the build's recipe
// key, or the box's name for a box labctl does not build (Vagrant fetches or has it).
func (l *Lab) EnsureBox(ctx context.Context, v *vagrant.Driver, w io.Writer) (string, error) {
	s := l.Spec
	if s.Box.Release == "" {
		return s.Box.Name, nil
	}
	r, err := build.BoxRecipeFor(s)
	if err != nil {
		return "", err
	}
	// One labctl at a time builds, adds or prunes a release's box: two `box add --force` of
	// one name at once would mix their files under VAGRANT_HOME.
	if err := os.MkdirAll(host.VagrantHome(), 0o755); err != nil {
		return "", err
	}
	lock, err := host.WaitLock(ctx, filepath.Join(host.VagrantHome(), "labctl-box-"+r.Flavour+".lock"), "box "+r.Name(), func(b *host.BusyError) {
		fmt.Fprintf(w, "box %s: waiting for pid %d (%s)\n", r.Name(), b.PID, b.What)
	})
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	file, err := build.BuildBox(ctx, r, w, v.Log)
	if err != nil {
		return "", err
	}
	marker := filepath.Join(host.VagrantHome(), "labctl-box-"+r.Flavour)
	if data, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(data)) == r.Key() && vagrantCopyIntact(r.Name(), file) {
		if list, err := v.BoxList(ctx); err == nil && strings.Contains(list, r.Name()+" ") {
			return r.Key(), host.OwnerOnly(vagrantBoxImage(r.Name()))
		}
	}
	start := time.Now()
	if err := v.BoxAdd(ctx, r.Name(), file); err != nil {
		return "", err
	}
	// Vagrant unpacks the box's disk under the umask (0644); the cached box file is 0600.
	if err := host.OwnerOnly(vagrantBoxImage(r.Name())); err != nil {
		return "", err
	}
	if err := host.WriteFileAtomic(marker, []byte(r.Key()+"\n"), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "box %s: added to Vagrant in %s\n", r.Name(), time.Since(start).Round(time.Second))
	if p, err := l.provider(); err == nil {
		p.BoxAdded(ctx, r.Flavour, w)
	}
	return r.Key(), nil
}

// vagrantBoxImage is box.img of a labctl box as `vagrant box add` unpacked it under
// VAGRANT_HOME (unversioned: version 0).
func vagrantBoxImage(name string) string {
	return filepath.Join(host.VagrantHome(), "boxes", strings.ReplaceAll(name, "/", "-VAGRANTSLASH-"), "0", provider.Builder(), "box.img")
}

// vagrantCopyIntact reports whether Vagrant's copy of box.img has the size of the one in the
// box file (a `box add` cut short leaves a shorter one).
func vagrantCopyIntact(name, boxFile string) bool {
	want, err := build.BoxImageSize(boxFile)
	if err != nil {
		return false
	}
	st, err := os.Stat(vagrantBoxImage(name))
	return err == nil && st.Size() == want
}

// BuildLXC builds the LXC of spec s from its lxc.source (cached; nothing for an LXC from
// apt): what a bisection does first for each commit, a failure telling that the commit does
// not build. Progress goes to w, the build's output to log.
func BuildLXC(ctx context.Context, s *spec.Spec, w, log io.Writer) error {
	b, err := build.LXCBuildFor(s)
	if err != nil || b == nil {
		return err
	}
	_, err = build.BuildLXC(ctx, *b, w, log)
	return err
}
