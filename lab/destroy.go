package lab

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/labctl/labctl/lab/action"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/vagrant"
)

// Destroy removes the lab's VM and what of the lab's own it left (its domain, by UUID, and
// the volumes the lab recorded), the pinned host key and the state. It destroys nothing when
// it cannot tell what exists, or when a VM of the lab's name is not the lab's; volumes named
// after the lab that it did not create are left, and named in the error. It returns what it
// removed, and holds the lab's lock.
func (l *Lab) Destroy(ctx context.Context, out io.Writer) (gone []string, err error) {
	err = l.locked(ctx, "destroy", out, func(v *vagrant.Driver) error {
		gone, err = l.destroy(ctx, v, out)
		return err
	})
	return gone, err
}

// destroy is Destroy with the lab's lock held (also up's rollback).
func (l *Lab) destroy(ctx context.Context, v *vagrant.Driver, out io.Writer) ([]string, error) {
	d := &destroying{lab: l, v: v}
	r := &action.Runner{Verb: "destroy", Out: out}
	err := r.Run(ctx, []action.Action{
		{Name: "agent", Do: func(ctx context.Context) (*action.Undo, error) { _, err := l.StopAgent(ctx); return nil, err }},
		{Name: "vm", Log: l.Log(labdir.VagrantLog), Do: d.vm},
		{Name: "leftovers", Do: d.leftovers},
		{Name: "state", Do: func(context.Context) (*action.Undo, error) {
			gone, err := l.forget()
			d.gone = append(d.gone, gone...)
			return nil, err
		}},
	})
	if err == nil && len(d.left.foreignVolumes) > 0 {
		err = fmt.Errorf("left pool volumes %s: they are named after lab %s but it did not create them; delete them (`virsh vol-delete --pool %s NAME`) if you know nobody uses them", strings.Join(d.left.foreignVolumes, ", "), l.Spec.Name, host.Pool)
	}
	return d.gone, err
}

// destroying is one run of destroy: what its phases hand on.
type destroying struct {
	lab  *Lab
	v    *vagrant.Driver
	p    Provider
	st   State
	left claim
	gone []string
}

// vm reads what exists (refusing a domain of the lab's name that is not the lab's) and has
// Vagrant destroy the VM it tracks.
func (d *destroying) vm(ctx context.Context) (*action.Undo, error) {
	l := d.lab
	p, err := l.provider()
	if err != nil {
		return nil, err
	}
	d.p = p
	hasVF, err := l.hasVagrantfile()
	if err != nil {
		return nil, err
	}
	if hasVF {
		if err := p.Prepare(ctx, io.Discard); err != nil {
			return nil, err
		}
	}
	c, err := l.claim(ctx, p, "destroy")
	if err != nil {
		return nil, err
	}
	d.st = l.State()
	if vid := l.vagrantID(p.Info().Name); hasVF && vid != "" {
		if err := d.v.Destroy(ctx); err != nil {
			return nil, err
		}
		d.gone = append(d.gone, "VM")
		// Vagrant forgets the VM: what is left is claimed by what was the lab's before.
		if d.st.DomainUUID == "" {
			d.st.DomainUUID = c.own.UUID
		}
		d.st.Volumes = mergeNames(d.st.Volumes, c.own.VolumeNames())
	}
	return nil, nil
}

// leftovers removes what of the lab's own the VM left beyond `vagrant destroy`.
func (d *destroying) leftovers(ctx context.Context) (*action.Undo, error) {
	inv, err := d.p.Inventory(ctx, d.lab)
	if err != nil {
		return nil, fmt.Errorf("cannot tell what the VM left: %w (run `labctl destroy` again)", err)
	}
	d.left = claimOf(inv, d.st, "")
	if d.left.foreignDomain != "" {
		d.left.own.UUID = ""
	}
	removed, err := d.p.Remove(ctx, d.left.own)
	d.gone = append(d.gone, removed...)
	return nil, err
}
