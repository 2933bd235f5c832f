package host

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// DomainUUID returns the UUID of the libvirt domain called name, "" when libvirt has none of
// that name. An error means libvirt did not answer, and says nothing about the domain.
func (v Libvirt) DomainUUID(ctx context.Context, name string) (string, error) {
	doms, err := v.domains(ctx)
	for _, d := range doms {
		if d.name == name {
			return d.uuid, nil
		}
	}
	return "", err
}

// Domains lists the names of every libvirt domain, running or not.
func (v Libvirt) Domains(ctx context.Context) ([]string, error) {
	doms, err := v.domains(ctx)
	var names []string
	for _, d := range doms {
		names = append(names, d.name)
	}
	return names, err
}

type domain struct{ uuid, name string }

// domains lists every libvirt domain, running or not, with its UUID: one call.
func (v Libvirt) domains(ctx context.Context) ([]domain, error) {
	out, err := v.Virsh(ctx, "list", "--all", "--uuid", "--name")
	if err != nil {
		return nil, err
	}
	var doms []domain
	for _, line := range strings.Split(out, "\n") {
		switch f := strings.Fields(line); len(f) {
		case 0:
		case 2:
			doms = append(doms, domain{uuid: f[0], name: f[1]})
		default:
			return nil, fmt.Errorf("virsh list --uuid --name printed %q, not a UUID and a name", line)
		}
	}
	return doms, nil
}

// DomainDisks lists the source paths of the disks of the domain with that UUID.
func (v Libvirt) DomainDisks(ctx context.Context, uuid string) ([]string, error) {
	out, err := v.Virsh(ctx, "domblklist", uuid, "--details")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		// Type Device Target Source
		f := strings.Fields(line)
		if len(f) == 4 && f[1] == "disk" && strings.HasPrefix(f[3], "/") {
			paths = append(paths, f[3])
		}
	}
	return paths, nil
}

// RemoveDomain stops and undefines the domain with that UUID (by UUID, never by name: a
// domain of the same name made meanwhile is not touched). Its volumes stay.
func (v Libvirt) RemoveDomain(ctx context.Context, uuid string) error {
	_ = v.PowerOff(ctx, uuid) // fails when it is not running: undefine decides
	_, err := v.Virsh(ctx, "undefine", uuid, "--snapshots-metadata")
	return err
}

// PowerOff pulls the plug of the running domain with that UUID (libvirt's `destroy`, which
// removes nothing: the domain stays defined, its disks and snapshots kept).
func (v Libvirt) PowerOff(ctx context.Context, uuid string) error {
	_, err := v.Virsh(ctx, "destroy", uuid)
	return err
}

// Volume is a volume of labctl's pool.
type Volume struct{ Name, Path string }

// Volumes lists the volumes of labctl's pool; no pool means none.
func (v Libvirt) Volumes(ctx context.Context) ([]Volume, error) {
	exists, err := v.PoolExists(ctx)
	if err != nil || !exists {
		return nil, err
	}
	out, err := v.Virsh(ctx, "vol-list", Pool, "--details")
	if err != nil {
		return nil, err
	}
	var vols []Volume
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] == "Name" || strings.HasPrefix(f[0], "---") {
			continue
		}
		vols = append(vols, Volume{Name: f[0], Path: f[1]})
	}
	return vols, nil
}

// DeleteVolume deletes one volume of labctl's pool.
func (v Libvirt) DeleteVolume(ctx context.Context, name string) error {
	_, err := v.Virsh(ctx, "vol-delete", "--pool", Pool, name)
	return err
}

// VolumeBytes returns the physical size of a volume of labctl's pool, in bytes (for a file
// volume: the file's size, whatever the virtual size of the qcow2 inside).
func (v Libvirt) VolumeBytes(ctx context.Context, name string) (int64, error) {
	out, err := v.Virsh(ctx, "vol-info", "--pool", Pool, "--bytes", "--physical", name)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Physical:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " bytes"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("virsh vol-info %s: cannot read %q: %w", name, line, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("virsh vol-info --physical %s printed no Physical line:\n%s", name, out)
}
