package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/provision/remote"
)

// Disk is a whole disk of the guest.
type Disk struct {
	Path, Serial, FSType, UUID string
	// Label is the filesystem's label, as the disk itself says (blkid -p).
	Label string
	Size  int64
}

// lsblkDev is one device of `lsblk -J -b` (null fields decode as empty strings).
type lsblkDev struct {
	Path       string     `json:"path"`
	Size       int64      `json:"size"`
	Type       string     `json:"type"`
	FSType     *string    `json:"fstype"`
	Serial     *string    `json:"serial"`
	Mountpoint *string    `json:"mountpoint"`
	UUID       *string    `json:"uuid"`
	Children   []lsblkDev `json:"children"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// FindDataDisk picks the data disk from `lsblk -J -b` output: the disk pinned by name when
// given, else the one with labctl's serial, else the only whole disk of the spec's size that
// is not the root disk. It never picks a disk that holds the root filesystem.
func FindDataDisk(lsblkJSON string, sizeBytes int64, pinned string) (Disk, error) {
	var doc struct {
		Blockdevices []lsblkDev `json:"blockdevices"`
	}
	if err := json.Unmarshal([]byte(lsblkJSON), &doc); err != nil {
		return Disk{}, fmt.Errorf("parse lsblk output: %w", err)
	}
	holdsRoot := func(d lsblkDev) bool {
		if str(d.Mountpoint) == "/" {
			return true
		}
		for _, c := range d.Children {
			if str(c.Mountpoint) == "/" || str(c.Mountpoint) == "/boot" {
				return true
			}
		}
		return false
	}
	var bySerial, bySize []Disk
	var seen []string
	for _, dev := range doc.Blockdevices {
		if dev.Type != "disk" && !(dev.Type == "loop" && dev.Path == pinned) {
			continue // only whole disks, or a loop device named on purpose
		}
		d := Disk{Path: dev.Path, Size: dev.Size, Serial: str(dev.Serial), FSType: str(dev.FSType), UUID: str(dev.UUID)}
		seen = append(seen, fmt.Sprintf("%s (%d bytes, fs %q)", d.Path, d.Size, d.FSType))
		if holdsRoot(dev) {
			if pinned == d.Path {
				return Disk{}, fmt.Errorf("disk.guest_device %s holds the root filesystem: it is not a data disk", pinned)
			}
			continue
		}
		switch {
		case pinned != "" && d.Path == pinned:
			return d, nil
		case d.Serial == render.DiskSerial:
			bySerial = append(bySerial, d)
		case d.Size == sizeBytes:
			bySize = append(bySize, d)
		}
	}
	switch {
	case pinned != "":
		return Disk{}, fmt.Errorf("disk.guest_device %s is not a disk of the guest (found %s)", pinned, strings.Join(seen, ", "))
	case len(bySerial) == 1:
		return bySerial[0], nil
	case len(bySize) == 1:
		return bySize[0], nil
	case len(bySize) > 1:
		return Disk{}, fmt.Errorf("%d disks have the data disk's size %d bytes: pin one with disk.guest_device", len(bySize), sizeBytes)
	}
	return Disk{}, fmt.Errorf("no data disk of %d bytes in the guest (found %s): check disk.size, and that the Vagrantfile attaches it", sizeBytes, strings.Join(seen, ", "))
}

func (p *Provisioner) dataDisk(ctx context.Context) (*Disk, error) {
	p.diskMu.Lock()
	defer p.diskMu.Unlock()
	if p.disk != nil {
		return p.disk, nil
	}
	out, err := remote.Sh(ctx, p.VM, true, "udevadm settle 2>/dev/null; lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,SERIAL,PTTYPE,MOUNTPOINT,UUID")
	if err != nil {
		return nil, err
	}
	mib, _ := p.Spec.Disk.SizeMiB()
	d, err := FindDataDisk(out, mib<<20, p.Spec.Disk.GuestDevice)
	if err != nil {
		return nil, err
	}
	// The filesystem as the disk itself says, not as udev last saw it.
	probe, err := remote.Sh(ctx, p.VM, true, remote.Shf("blkid -p -o export %s || true", d.Path))
	if err != nil {
		return nil, err
	}
	d.FSType, d.UUID, d.Label = "", "", ""
	for _, line := range strings.Split(probe, "\n") {
		if v, ok := strings.CutPrefix(line, "TYPE="); ok {
			d.FSType = v
		}
		if v, ok := strings.CutPrefix(line, "UUID="); ok {
			d.UUID = v
		}
		if v, ok := strings.CutPrefix(line, "LABEL="); ok {
			d.Label = v
		}
	}
	p.disk = &d
	return p.disk, nil
}

// forgetDisk drops what was read of the data disk, and the files rendered for it.
func (p *Provisioner) forgetDisk() {
	p.guestMu.Lock()
	defer p.guestMu.Unlock()
	p.diskMu.Lock()
	defer p.diskMu.Unlock()
	p.disk, p.guest = nil, nil
}

// DataDiskLabel is the btrfs label labctl gives the data disk; a btrfs with another label is
// someone else's and is not touched without --force-format.
const DataDiskLabel = "labctl"

// formatMarker holds, while labctl formats the data disk, the disk's device path.
const formatMarker = "/var/lib/labctl/formatting-data-disk"

// formatInterrupted reports whether labctl began to format this disk and did not finish.
func (p *Provisioner) formatInterrupted(ctx context.Context, d *Disk) (bool, error) {
	got, err := remote.Sh(ctx, p.VM, true, remote.Shf("cat %s 2>/dev/null || true", formatMarker))
	return got == d.Path, err
}

func (p *Provisioner) diskStep() Step {
	return Step{
		Name: "btrfs data disk",
		Hint: "labctl formats only a blank disk; if this disk's data may go, run `labctl provision --force-format`",
		Check: func(ctx context.Context) (bool, string, error) {
			d, err := p.dataDisk(ctx)
			if err != nil {
				return false, "", err
			}
			interrupted, err := p.formatInterrupted(ctx, d)
			if err != nil {
				return false, "", err
			}
			if interrupted {
				return false, fmt.Sprintf("mkfs.btrfs %s again (an earlier format of it was interrupted)", d.Path), nil
			}
			if d.FSType == "btrfs" {
				if d.Label == DataDiskLabel || p.Opts.Plan {
					return true, "", nil
				}
				if !p.Opts.ForceFormat {
					return false, "", fmt.Errorf("%s holds a btrfs filesystem labelled %q, not labctl's: refusing to use or format it without --force-format", d.Path, d.Label)
				}
			}
			return false, fmt.Sprintf("mkfs.btrfs %s (%d bytes, blank)", d.Path, d.Size), nil
		},
		Apply: func(ctx context.Context) error {
			d, err := p.dataDisk(ctx)
			if err != nil {
				return err
			}
			interrupted, err := p.formatInterrupted(ctx, d)
			if err != nil {
				return err
			}
			// Look again, beyond lsblk: any signature (filesystem, RAID, partition table) or
			// partition means data, unless it is what labctl's own interrupted format left.
			sig, err := remote.Sh(ctx, p.VM, true, remote.Shf("wipefs -n -O TYPE --noheadings %s; lsblk -n -o NAME %s | tail -n +2", d.Path, d.Path))
			if err != nil {
				return err
			}
			if strings.TrimSpace(sig) != "" && !p.Opts.ForceFormat && !interrupted {
				return fmt.Errorf("%s is not blank (%s): refusing to format it; pass --force-format if its data may be destroyed",
					d.Path, strings.Join(strings.Fields(sig), ", "))
			}
			// The marker says, until mkfs has finished, that the disk is labctl's, being
			// formatted: a run interrupted in between formats it again instead of refusing it.
			line := remote.Shf("mkdir -p %s && echo %s > %s && ", path.Dir(formatMarker), d.Path, formatMarker) +
				p.mkfsLine(d.Path) + remote.Shf(" && rm -f %s", formatMarker)
			if _, err := remote.Sh(ctx, p.VM, true, line); err != nil {
				return err
			}
			p.forgetDisk() // read the new UUID, render again
			_, err = p.dataDisk(ctx)
			return err
		},
	}
}

func (p *Provisioner) mountStep() Step {
	mp := p.Spec.Btrfs.MountPoint
	return Step{
		Name: "mount " + mp,
		Hint: "check the fstab line with `labctl exec -- cat /etc/fstab` and `dmesg`",
		Check: func(ctx context.Context) (bool, string, error) {
			out, err := remote.Sh(ctx, p.VM, true, remote.Shf("findmnt -n -o FSTYPE,OPTIONS --mountpoint %s || true", mp))
			if err != nil {
				return false, "", err
			}
			f := strings.Fields(out)
			if len(f) < 2 || f[0] != "btrfs" {
				return false, "mount " + mp, nil
			}
			for _, o := range p.Spec.Btrfs.Options {
				if !FstabOnly(o) && !strings.Contains(","+f[1]+",", ","+o+",") {
					return false, "remount " + mp + " with " + o, nil
				}
			}
			return true, "", nil
		},
		Apply: func(ctx context.Context) error {
			// udev first: systemd binds the mount to the disk's by-uuid device unit and
			// unmounts it again at once while udev has not yet seen the new file system's
			// UUID ("mnt.mount: Unit is bound to inactive unit dev-disk-by\x2duuid-....device.
			// Stopping, too.": bullseye, mount exited 0, findmnt found nothing). Settling is not
			// enough when udev got no event for the new file system: a change event is asked
			// for every block device first.
			_, err := remote.Sh(ctx, p.VM, true, remote.Shf("(udevadm trigger --action=change --subsystem-match=block 2>/dev/null || true) && (udevadm settle 2>/dev/null || true) && mkdir -p %s && (systemctl daemon-reload 2>/dev/null || true) && if mountpoint -q %s; then mount -o remount %s; else mount %s; fi", mp, mp, mp, mp))
			return err
		},
	}
}

func (p *Provisioner) ownerStep() Step {
	mp, want := p.Spec.Btrfs.MountPoint, p.Spec.User+":"+p.Spec.User
	return Step{
		Name: "owner of " + mp,
		Check: func(ctx context.Context) (bool, string, error) {
			got, err := remote.Sh(ctx, p.VM, true, remote.Shf("stat -c %%U:%%G %s", mp))
			if err != nil {
				return false, "", err
			}
			return got == want, "chown " + want + " " + mp, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := remote.Sh(ctx, p.VM, true, remote.Shf("chown %s %s", want, mp))
			return err
		},
	}
}

// FstabOnly reports whether a mount option is for mount(8) or systemd, not the filesystem: it
// never shows among a mounted filesystem's options.
func FstabOnly(o string) bool {
	switch o {
	case "defaults", "auto", "noauto", "nofail", "user", "nouser", "users", "owner", "group", "_netdev":
		return true
	}
	return strings.HasPrefix(o, "x-") || strings.HasPrefix(o, "comment=")
}

// btrfsFeatures are mkfs.btrfs features that a kernel older than since cannot mount
// read-write, so labctl leaves them out for such a kernel when the guest's mkfs.btrfs makes
// them: forky's btrfs-progs (7.1) makes block-group-tree by default, which kernel 5.10 (a
// box's kernel from bullseye) refuses ("cannot mount read-write because of unsupported
// optional features (0x8)").
var btrfsFeatures = []struct{ feature, since string }{{"block-group-tree", "6.1"}}

// mkfsLine is the command that formats dev: labctl's label, and no feature the guest's kernel
// cannot mount (only those the guest's mkfs.btrfs knows: it refuses a name it does not).
func (p *Provisioner) mkfsLine(dev string) string {
	var off []string
	if kv, err := p.Facts.KernelVersion(); err == nil {
		for _, f := range btrfsFeatures {
			if kv.LessThan(version.Must(version.NewVersion(f.since))) {
				off = append(off, f.feature)
			}
		}
	}
	if len(off) == 0 {
		return remote.Shf("mkfs.btrfs -f -L %s %s", DataDiskLabel, dev)
	}
	return "o=; for f in " + strings.Join(off, " ") + "; do if mkfs.btrfs -O list-all 2>&1 | grep -q \"^$f\"; then o=\"${o:+$o,}^$f\"; fi; done; " +
		remote.Shf("mkfs.btrfs -f ${o:+-O \"$o\"} -L %s %s", DataDiskLabel, dev)
}
