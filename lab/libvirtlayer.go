package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/layer"
)

// libvirt keeps a provisioned layer as two volumes of labctl's pool: the root disk as a qcow2
// delta over the box's volume, and the data disk whole (both read from the ready snapshot of
// the lab that made it). The root volume is the box volume of a Vagrant box of its own,
// labctl/layer-<key> (box.img a hard link to it), so that vagrant-libvirt backs a new VM's
// disk by it as by any box; the lab's data disk is an overlay of the data volume that labctl
// makes before `vagrant up` (the Vagrantfile allows it to exist).

// layerBox is the Vagrant box of a layer.
func layerBox(key string) string { return "labctl/layer-" + key }

// layerVolumes are the pool volumes of a layer made at created: the root (named as
// vagrant-libvirt names the box volume of layerBox, whose box.img has that mtime) and the data.
func layerVolumes(key string, created time.Time) (root, data string) {
	return boxVolumeName(layerBox(key), created), "labctl-VAGRANTSLASH-layer-" + key + "_data.qcow2"
}

// boxVolumeName is the pool volume vagrant-libvirt uploads an unversioned box's box.img to:
// the box's name with "/" spelled -VAGRANTSLASH-, and box.img's mtime.
func boxVolumeName(box string, mtime time.Time) string {
	return fmt.Sprintf("%s_vagrant_box_image_0_%d_box.img", strings.ReplaceAll(box, "/", "-VAGRANTSLASH-"), mtime.Unix())
}

// vagrantBoxDir is where Vagrant keeps a box labctl made (unversioned: version 0).
func vagrantBoxDir(name string) string { return filepath.Dir(vagrantBoxImage(name)) }

// BaseVolume is the pool volume vagrant-libvirt backs a new VM of the labctl box flavour by.
func (p libvirt) BaseVolume(flavour string) (string, error) {
	st, err := os.Stat(vagrantBoxImage("labctl/" + flavour))
	if err != nil {
		return "", fmt.Errorf("box labctl/%s is not in Vagrant: %w", flavour, err)
	}
	return boxVolumeName("labctl/"+flavour, st.ModTime()), nil
}

// CheckLayer makes sure a cached layer can be booted from: its base box volume is there and
// both its disks are whole (size and sha256 as recorded).
func (p libvirt) CheckLayer(rec layer.Layer) error {
	if why := p.baseGone(rec); why != "" {
		return fmt.Errorf("layer %s: %s", rec.Key, why)
	}
	return layer.Verify(rec, p.virt.PoolDir())
}

// BrokenLayer says cheaply why a layer cannot be booted from ("": it can): its box's volume is
// gone, or a disk is missing or of another size than recorded (CheckLayer reads the sha256).
func (p libvirt) BrokenLayer(rec layer.Layer) string {
	if why := p.baseGone(rec); why != "" {
		return why
	}
	dir := p.virt.PoolDir()
	for _, f := range []layer.File{rec.Root, rec.Data} {
		if st, err := os.Stat(filepath.Join(dir, f.Name)); err != nil || st.Size() != f.Size {
			return "disk " + f.Name + " is missing or of another size"
		}
	}
	return ""
}

// baseGone says that the box volume the layer's root is a delta over is gone ("": it is there).
func (p libvirt) baseGone(rec layer.Layer) string {
	if _, err := os.Stat(filepath.Join(p.virt.PoolDir(), rec.Inputs.BoxVolume)); err != nil {
		return "the box volume it is a delta over is gone (" + rec.Inputs.BoxVolume + ")"
	}
	return ""
}

// UseLayer makes the layer's box known to Vagrant (again, if it went) and creates the lab's
// data disk as an overlay of the layer's; it returns the box's name and the disk's volume.
func (p libvirt) UseLayer(ctx context.Context, l *Lab, rec layer.Layer) (box, disk string, err error) {
	box = layerBox(rec.Key)
	// The layers an older labctl kept (this one and any other) were readable by every user.
	if err := p.layersOwnerOnly(rec); err != nil {
		return "", "", err
	}
	if err := p.layerBoxDir(rec); err != nil {
		return "", "", err
	}
	mib, err := l.Spec.Disk.SizeMiB()
	if err != nil {
		return "", "", err
	}
	disk = l.Spec.DomainName() + "-sda.qcow2"
	data := filepath.Join(p.virt.PoolDir(), rec.Data.Name)
	if _, err := p.virt.Virsh(ctx, "vol-create-as", host.Pool, disk, fmt.Sprintf("%dM", mib), "--format", "qcow2",
		"--backing-vol", data, "--backing-vol-format", "qcow2"); err != nil {
		return "", "", err
	}
	return box, disk, nil
}

// layersOwnerOnly makes the disks of rec and of every layer on record their owner's alone
// (layer.Store.Get has checked that their names are plain file names of the pool).
func (p libvirt) layersOwnerOnly(rec layer.Layer) error {
	recs, _ := LayerStore().List() // a record that cannot be read is another check's business
	var errs []error
	for _, r := range append(recs, rec) {
		for _, f := range []layer.File{r.Root, r.Data} {
			errs = append(errs, host.OwnerOnly(filepath.Join(p.virt.PoolDir(), f.Name)))
		}
	}
	return errors.Join(errs...)
}

// layerBoxDir writes the layer's Vagrant box: the base box's files (its metadata, Vagrantfile,
// kernel, initrd and key; hard links, copies across filesystems), and box.img, a link to the
// root volume with the mtime its volume's name says.
func (p libvirt) layerBoxDir(rec layer.Layer) error {
	dir := vagrantBoxDir(layerBox(rec.Key))
	img := filepath.Join(dir, "box.img")
	if st, err := os.Stat(img); err == nil && st.Size() == rec.Root.Size && st.ModTime().Unix() == rec.Created.Unix() {
		return nil
	}
	base := vagrantBoxDir("labctl/" + rec.Flavour)
	files, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("layer %s: its box is made of box labctl/%s's files: %w", rec.Key, rec.Flavour, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if f.Name() != "box.img" && f.Type().IsRegular() {
			if err := linkOrCopy(filepath.Join(base, f.Name()), filepath.Join(dir, f.Name())); err != nil {
				return err
			}
		}
	}
	if err := linkOrCopy(filepath.Join(p.virt.PoolDir(), rec.Root.Name), img); err != nil {
		return err
	}
	return os.Chtimes(img, rec.Created, rec.Created)
}

// linkOrCopy makes dst a hard link to src (a sparse copy across filesystems), replacing dst.
func linkOrCopy(src, dst string) error {
	os.Remove(dst)
	if os.Link(src, dst) == nil {
		return nil
	}
	if out, err := exec.Command("cp", "-p", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s to %s: %v: %s", src, dst, err, out)
	}
	return nil
}

// CaptureLayer makes the layer of inputs from the ready snapshot of the lab's running VM:
// the root disk as a delta over the box volume, the data disk whole, both read from the
// snapshot (qemu-img -U: the VM runs on; the snapshot's clusters never change), checksummed.
func (p libvirt) CaptureLayer(ctx context.Context, l *Lab, in layer.Inputs, flavour string, log io.Writer) (layer.Layer, error) {
	dir := p.virt.PoolDir()
	rec := layer.Layer{Key: in.Key(), Inputs: in, Flavour: flavour, Created: time.Now().UTC().Truncate(time.Second), From: l.Spec.Name}
	rootVol, dataVol := layerVolumes(rec.Key, rec.Created)
	srcRoot := filepath.Join(dir, l.Spec.DomainName()+".img")
	srcData := filepath.Join(dir, l.Spec.DomainName()+"-sda.qcow2")
	for _, c := range []struct {
		src, dst string
		file     *layer.File
		backing  []string
	}{
		{srcRoot, rootVol, &rec.Root, []string{"-B", filepath.Join(dir, in.BoxVolume), "-F", "qcow2"}},
		{srcData, dataVol, &rec.Data, nil},
	} {
		dst := filepath.Join(dir, c.dst)
		part := dst + ".part"
		args := append([]string{"convert", "-U", "-l", "snapshot.name=" + ReadySnapshot, "-f", "qcow2", "-O", "qcow2"}, c.backing...)
		cmd := exec.CommandContext(ctx, "qemu-img", append(args, c.src, part)...)
		cmd.Stdout, cmd.Stderr = log, log
		fmt.Fprintf(log, "$ %s\n", strings.Join(cmd.Args, " "))
		if err := cmd.Run(); err != nil {
			os.Remove(part)
			return rec, fmt.Errorf("layer %s: qemu-img convert of %s failed (%v): see the log", rec.Key, filepath.Base(c.src), err)
		}
		// The lab's provisioned disks: its owner's alone (qemu-img made it under the umask).
		if err := host.OwnerOnly(part); err != nil {
			return rec, err
		}
		if err := os.Chtimes(part, rec.Created, rec.Created); err != nil {
			return rec, err
		}
		d, err := layer.Digest(part)
		if err != nil {
			return rec, err
		}
		d.Name = c.dst
		*c.file = d
		if err := os.Rename(part, dst); err != nil {
			return rec, err
		}
	}
	if _, err := p.virt.Virsh(ctx, "pool-refresh", host.Pool); err != nil {
		return rec, err
	}
	return rec, p.layerBoxDir(rec)
}

// DropLayer deletes a layer's volumes and its Vagrant box; a volume already gone is no error.
func (p libvirt) DropLayer(ctx context.Context, rec layer.Layer) error {
	var errs []error
	for _, f := range []layer.File{rec.Root, rec.Data} {
		if f.Name == "" {
			continue
		}
		if err := os.Remove(filepath.Join(p.virt.PoolDir(), f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if _, err := p.virt.Virsh(ctx, "pool-refresh", host.Pool); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(filepath.Dir(vagrantBoxDir(layerBox(rec.Key)))))
	return errors.Join(errs...)
}

// LayersInUse are the layers some VM's disks in the pool are backed by (their root or data
// volume names), read from the qcow2 headers of the pool's other volumes.
func (p libvirt) LayersInUse(ctx context.Context) (map[string]bool, error) {
	vols, err := p.virt.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, v := range vols {
		if strings.Contains(v.Name, "VAGRANTSLASH") {
			continue
		}
		out, err := exec.CommandContext(ctx, "qemu-img", "info", "-U", "--output=json", v.Path).Output()
		if err != nil {
			continue
		}
		var info struct {
			Backing string `json:"backing-filename"`
		}
		if json.Unmarshal(out, &info) == nil && info.Backing != "" {
			used[filepath.Base(info.Backing)] = true
		}
	}
	return used, nil
}
