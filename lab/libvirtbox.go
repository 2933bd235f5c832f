package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/host"
)

// The libvirt provider's copies of labctl's boxes in its storage pool.

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
	vol := boxVolumeName(name, st.ModTime())
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
