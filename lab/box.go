package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// EnsureBox builds the spec's box if needed and adds it to Vagrant unless Vagrant already
// has this very build. It returns the build's recipe key, or the box's name for a box labctl
// does not build (Vagrant fetches or has it).
func EnsureBox(ctx context.Context, s *spec.Spec, v *vagrant.Driver, w io.Writer) (string, error) {
	if s.Box.Release == "" {
		return s.Box.Name, nil
	}
	r, err := build.BoxRecipeFor(s)
	if err != nil {
		return "", err
	}
	file, err := build.BuildBox(ctx, r, w, v.Log)
	if err != nil {
		return "", err
	}
	marker := filepath.Join(host.VagrantHome(), "labctl-box-"+r.Release)
	if data, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(data)) == r.Key() {
		if list, err := v.BoxList(ctx); err == nil && strings.Contains(list, r.Name()+" ") {
			return r.Key(), nil
		}
	}
	start := time.Now()
	if err := v.BoxAdd(ctx, r.Name(), file); err != nil {
		return "", err
	}
	if err := writeAtomic(marker, []byte(r.Key()+"\n"), 0o644); err != nil {
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
	doms, err := host.Domains(ctx)
	if err != nil {
		fmt.Fprintf(w, "box labctl/%s: older box volumes not pruned: %v\n", release, err)
		return
	}
	prefix := "labctl-VAGRANTSLASH-" + release + "_vagrant_box_image_"
	if slices.ContainsFunc(doms, func(d string) bool { return strings.HasPrefix(d, "labctl-") }) {
		fmt.Fprintf(w, "box labctl/%s: older box volumes kept in pool %s while a labctl VM exists\n", release, host.Pool)
		return
	}
	gone, err := host.DeleteVolumes(ctx, prefix)
	if err != nil {
		fmt.Fprintf(w, "box labctl/%s: could not prune older box volumes: %v\n", release, err)
	}
	for _, g := range gone {
		fmt.Fprintf(w, "  removed the older box volume %s from pool %s\n", g, host.Pool)
	}
}
