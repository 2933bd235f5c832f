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
// has this very build, whole (its box.img of the box file's size). It returns the build's recipe key, or the box's name for a box labctl
// does not build (Vagrant fetches or has it).
func EnsureBox(ctx context.Context, s *spec.Spec, v *vagrant.Driver, w io.Writer) (string, error) {
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
			return r.Key(), nil
		}
	}
	start := time.Now()
	if err := v.BoxAdd(ctx, r.Name(), file); err != nil {
		return "", err
	}
	if err := host.WriteFileAtomic(marker, []byte(r.Key()+"\n"), 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "box %s: added to Vagrant in %s\n", r.Name(), time.Since(start).Round(time.Second))
	if virt, err := host.LibvirtFor(s.Libvirt); err == nil && s.ProviderFor() == "libvirt" {
		pruneBoxVolumes(ctx, virt, r.Flavour, w)
	}
	return r.Key(), nil
}

// pruneBoxVolumes deletes the copies of earlier builds of a release's box that vagrant-libvirt
// uploaded into the pool (~800 MB each; the new build is uploaded at its first `up`). It keeps
// them all while any labctl VM is defined, since one may be backed by them.
func pruneBoxVolumes(ctx context.Context, virt host.Libvirt, release string, w io.Writer) {
	dom, err := virt.LabctlDomain(ctx)
	if err != nil {
		fmt.Fprintf(w, "box labctl/%s: older box volumes not pruned: %v\n", release, err)
		return
	}
	prefix := "labctl-VAGRANTSLASH-" + release + "_vagrant_box_image_"
	if dom != "" {
		fmt.Fprintf(w, "box labctl/%s: older box volumes kept in pool %s while a labctl VM exists\n", release, host.Pool)
		return
	}
	gone, err := virt.DeleteVolumes(ctx, prefix)
	if err != nil {
		fmt.Fprintf(w, "box labctl/%s: could not prune older box volumes: %v\n", release, err)
	}
	for _, g := range gone {
		fmt.Fprintf(w, "  removed the older box volume %s from pool %s\n", g, host.Pool)
	}
}

// vagrantBoxImage is box.img of a labctl box as `vagrant box add` unpacked it under
// VAGRANT_HOME (unversioned: version 0).
func vagrantBoxImage(name string) string {
	return filepath.Join(host.VagrantHome(), "boxes", strings.ReplaceAll(name, "/", "-VAGRANTSLASH-"), "0", "libvirt", "box.img")
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

// checkBoxVolume makes sure the pool volume that vagrant-libvirt boots a new VM of the box
// from is a whole copy of the box's box.img: it uploads box.img byte for byte into a volume
// named after the box and box.img's mtime, and uses it as is once it exists, even when an
// upload was cut short. A volume whose size differs is deleted, so that vagrant-libvirt
// uploads it again; while a labctl VM is defined (it may be backed by it) up stops instead,
// saying what to do.
func checkBoxVolume(ctx context.Context, virt host.Libvirt, boxFile, flavour string, w io.Writer) error {
	want, err := build.BoxImageSize(boxFile)
	if err != nil {
		return err
	}
	name := "labctl/" + flavour
	st, err := os.Stat(vagrantBoxImage(name))
	if err != nil {
		return nil // not added: vagrant says so
	}
	vol := fmt.Sprintf("labctl-VAGRANTSLASH-%s_vagrant_box_image_0_%d_box.img", flavour, st.ModTime().Unix())
	vols, err := virt.Volumes(ctx)
	if err != nil {
		return fmt.Errorf("box %s: cannot check its copy in pool %s: %w", name, host.Pool, err)
	}
	if !slices.ContainsFunc(vols, func(v host.Volume) bool { return v.Name == vol }) {
		return nil // uploaded at this up
	}
	got, err := virt.VolumeBytes(ctx, vol)
	if err != nil {
		return fmt.Errorf("box %s: cannot check its copy in pool %s: %w", name, host.Pool, err)
	}
	if got == want {
		return nil
	}
	dom, err := virt.LabctlDomain(ctx)
	if err != nil {
		return err
	}
	if dom != "" {
		return fmt.Errorf("box %s: its copy %s in pool %s is %d bytes, box.img is %d (an upload cut short?); labctl does not delete it while a labctl VM (%s) may be backed by it: destroy those labs, or delete it yourself (`virsh vol-delete --pool %s %s`), then `labctl up` again", name, vol, host.Pool, got, want, dom, host.Pool, vol)
	}
	if err := virt.DeleteVolume(ctx, vol); err != nil {
		return err
	}
	fmt.Fprintf(w, "box %s: its copy %s in pool %s was %d bytes, box.img is %d: deleted, vagrant-libvirt uploads it again\n", name, vol, host.Pool, got, want)
	return nil
}
