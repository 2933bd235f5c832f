package lab

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/labctl/labctl/lab/action"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/layer"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// UpOptions change what up may do and say how it reaches the lab.
type UpOptions struct {
	// Keep keeps a VM this run created when a later phase fails (--keep-on-failure).
	Keep bool
	// ForceFormat lets provisioning format a data disk that is not blank.
	ForceFormat bool
	// NoLayer provisions a new VM from its box even when its layer is cached, and keeps none.
	NoLayer bool
	// FreshLayer provisions a new VM from its box and keeps its layer anew, replacing a cached
	// one no VM is backed by (the VM test proves provisioning from the box this way).
	FreshLayer bool
	Connect    ConnectOptions
}

// UpReport is what up did, for the caller to print.
type UpReport struct {
	// Phases is how long each phase took, in order.
	Phases []action.Timing
	Took   time.Duration
	// Summary counts the provisioning steps; Levels is the lab, level by level.
	Summary provision.Summary
	Levels  []Level
	// Snapshot is how long the ready snapshot took, when up took it (0: it did not).
	Snapshot time.Duration
	// Layer is the key of the provisioned layer the new VM booted from ("": none).
	Layer string
}

// TookFor is how long the phase called name took (0 when it did not run).
func (r UpReport) TookFor(name string) time.Duration {
	for _, t := range r.Phases {
		if t.Name == name {
			return t.Took
		}
	}
	return 0
}

// The phases of up, in order.
const (
	PhaseHost      = "host"
	PhaseBox       = "box"
	PhaseVM        = "vagrant up"
	PhaseSSH       = "ssh"
	PhaseProvision = "provision"
	PhaseLevels    = "levels"
	PhaseSnapshot  = "snapshot"
)

// upRun is one run of up: what its phases hand on to the next.
type upRun struct {
	lab    *Lab
	o      UpOptions
	out    io.Writer
	boot   booting
	skipVM bool
	// created says the vm phase created the lab's VM (or disks for one).
	created bool
	// rollback lets a later failure destroy a VM this run created (up; not Boot).
	rollback bool
	conn     *Conn
	prov     *provision.Provisioner
	report   UpReport
	// layerIn are the inputs of the lab's layer (nil: it has none); layer is the cached one
	// the new VM boots from (nil: provisioned from the box); flavour is the box's.
	layerIn *layer.Inputs
	layer   *layer.Layer
	flavour string
	// provisionTook is how long the provision phase took (kept with the layer).
	provisionTook time.Duration
	// images are the container images built beside the box and the boot (nil: none).
	images *prebuild
}

// Up brings the lab up: host, box, `vagrant up`, connection, provisioning, the levels, and
// after the first green provision the ready snapshot (`labctl reset`). Progress goes to out,
// a line per phase. If a phase fails, a VM this run created is destroyed (and what was removed
// is said) unless o.Keep; a VM whose state could not be read never counts as created. It
// holds the lab's lock.
func (l *Lab) Up(ctx context.Context, out io.Writer, o UpOptions) (UpReport, error) {
	start := time.Now()
	u := &upRun{lab: l, o: o, out: out, rollback: true}
	defer u.close()
	err := l.locked(ctx, "up", out, func(v *vagrant.Driver) error {
		u.boot = booting{v: v, out: out}
		fmt.Fprintf(out, "lab %s: %s on %s\n", l.Spec.Name, l.Spec.BoxName(), l.Spec.ProviderFor())
		r := &action.Runner{Verb: "up", Out: out, Keep: o.Keep, KeepFlag: "--keep-on-failure"}
		defer func() { u.report.Phases = r.Timings }()
		return r.Run(ctx, u.actions())
	})
	u.report.Took = time.Since(start)
	return u.report, err
}

// Booted is what Boot did.
type Booted struct {
	// Before is the VM's state before the boot, in Vagrant's words (not_created: none).
	Before string
	// Created says the boot created a VM, or disks for one, and recorded them as the lab's.
	Created bool
	Phases  []action.Timing
}

// Boot runs up's first phases only (host, box, `vagrant up`): the VM booted, not provisioned.
// Nothing it created is removed when it fails (Vagrant removes a VM whose creation failed);
// the VM tests use it.
func (l *Lab) Boot(ctx context.Context, out io.Writer) (Booted, error) {
	u := &upRun{lab: l, out: out}
	r := &action.Runner{Verb: "boot", Out: out}
	err := l.locked(ctx, "up", out, func(v *vagrant.Driver) error {
		u.boot = booting{v: v, out: out}
		return r.Run(ctx, u.bootActions())
	})
	return Booted{Before: u.boot.before, Created: u.created, Phases: r.Timings}, err
}

func (u *upRun) close() {
	u.stopImages()
	if u.conn != nil {
		u.conn.Close()
	}
}

// bootActions are up's first phases: the host, the box, `vagrant up`.
func (u *upRun) bootActions() []action.Action {
	vagrantLog := u.lab.Log(labdir.VagrantLog)
	needsVM := func() bool { return !u.skipVM }
	return []action.Action{
		{Name: PhaseHost, Do: u.host},
		{Name: PhaseBox, When: needsVM, Log: vagrantLog, Do: func(ctx context.Context) (*action.Undo, error) {
			return nil, u.lab.boxFor(ctx, &u.boot)
		}},
		{Name: PhaseVM, When: needsVM, Log: vagrantLog, Do: u.vm},
	}
}

// actions are up's phases: host, box, the layer a new VM boots from, `vagrant up`, then
// connect, provision, read the levels, take the ready snapshot after the first green
// provision, and keep the layer of a lab provisioned from its box.
func (u *upRun) actions() []action.Action {
	l := u.lab
	b := u.bootActions() // host, box, vagrant up
	newVM := func() bool { return !u.skipVM && u.boot.before == "not_created" }
	box := b[1]
	doBox := box.Do
	box.Do = func(ctx context.Context) (*action.Undo, error) {
		if u.boot.before == "not_created" {
			u.startImages(ctx)
		}
		return doBox(ctx)
	}
	return append([]action.Action{b[0], box, {Name: PhaseLayer, When: newVM, Do: u.pickLayer}, b[2]}, []action.Action{
		{Name: PhaseSSH, Log: l.Log(labdir.ProvisionLog), Do: func(ctx context.Context) (*action.Undo, error) {
			c, err := l.Connect(ctx, u.o.Connect)
			u.conn = c
			if err == nil && u.layer != nil {
				err = u.newIdentity(ctx)
			}
			return nil, err
		}},
		{Name: PhaseProvision, Log: l.Log(labdir.ProvisionLog), Do: u.provision},
		{Name: PhaseLevels, Do: func(ctx context.Context) (*action.Undo, error) {
			levels, err := LevelsOf(ctx, u.prov)
			u.report.Levels = levels
			return nil, err
		}},
		{Name: PhaseSnapshot, When: u.wantsReady, Do: func(ctx context.Context) (*action.Undo, error) {
			start := time.Now()
			if err := u.syncForLayer(ctx); err != nil {
				return nil, err
			}
			u.close()
			u.conn = nil
			err := l.takeReady(ctx)
			u.report.Snapshot = time.Since(start)
			return nil, err
		}},
		{Name: PhaseKeepLayer, Log: l.Log(labdir.LayerLog), Do: u.keepLayer, When: func() bool {
			return u.layerIn != nil && u.layer == nil && u.report.Snapshot > 0
		}},
	}...)
}

// syncForLayer has the guest write what it holds in memory to its disks before the ready
// snapshot when a layer is kept from it: the layer is the snapshot's disks without its memory.
func (u *upRun) syncForLayer(ctx context.Context) error {
	if u.layerIn == nil || u.layer != nil || u.conn == nil {
		return nil
	}
	if _, err := u.conn.VM().Run(ctx, remote.Cmd{Sudo: true, Line: "sync"}); err != nil {
		return fmt.Errorf("sync the guest's disks before its snapshot: %w", err)
	}
	return nil
}

// host prepares the host and the lab's Vagrantfile, reading first what exists: it stops,
// changing nothing, when the VM's state or what exists under the lab's names cannot be read,
// or when a VM of the lab's name is not the lab's.
func (u *upRun) host(ctx context.Context) (*action.Undo, error) {
	l, b := u.lab, &u.boot
	p, err := l.provider()
	if err != nil {
		return nil, err
	}
	b.p = p
	if err := p.Prepare(ctx, u.out); err != nil {
		return nil, err
	}
	if b.before, _, err = l.vmState(ctx, p, b.v); err != nil {
		return nil, fmt.Errorf("cannot tell whether the lab's VM exists, so nothing was changed: %w", err)
	}
	if b.pre, err = l.claim(ctx, p, "up"); err != nil {
		return nil, err
	}
	if b.before == "not_created" {
		err = l.checkNothingLeft(b.pre)
		if err == nil {
			err = p.BeforeCreate(ctx, l, u.out)
		}
	} else {
		err = l.adopt(b.pre.own)
	}
	if err != nil {
		return nil, err
	}
	notice, changed, err := l.writeVagrantfile(p)
	if err != nil {
		return nil, err
	}
	if notice != "" {
		fmt.Fprintln(u.out, notice)
	}
	if b.before == "running" && !changed {
		// Nothing for Vagrant to do: the VM runs from this very Vagrantfile.
		fmt.Fprintln(u.out, "vm: running, its Vagrantfile unchanged (vagrant up not needed)")
		u.skipVM = true
	}
	if ready := l.State().Ready; b.before == "running" && ready != nil && ready.SpecSum != l.SpecSum() {
		// Never a silent revert: what the user did in the running lab stays; reset is the way
		// back to the snapshot (and provisions it to the new spec).
		fmt.Fprintf(u.out, "the spec or labctl changed since the ready snapshot (%s): provisioning the running lab in place; `labctl reset` provisions from the snapshot instead\n", ready.Taken.Format("2006-01-02 15:04"))
	}
	return nil, nil
}

// vm boots the VM; a VM this run created is the phase's undo (destroyed when a later phase
// fails).
func (u *upRun) vm(ctx context.Context) (*action.Undo, error) {
	created, err := u.lab.boot(ctx, &u.boot)
	u.created = created
	if !created || !u.rollback {
		return nil, err
	}
	return &action.Undo{
		What: "the VM this run created",
		Kept: "keeping the VM for inspection (--keep-on-failure): `labctl ssh`, `labctl logs`; remove it with `labctl destroy`",
		Do: func(ctx context.Context, out io.Writer) {
			gone, err := u.lab.destroy(ctx, u.boot.v, out)
			if err != nil {
				fmt.Fprintf(out, "could not remove everything (%v): run `labctl destroy`\n", err)
				return
			}
			fmt.Fprintf(out, "removed: %v\n", gone)
		},
	}, err
}

// provision runs the provisioning steps over the connection.
func (u *upRun) provision(ctx context.Context) (*action.Undo, error) {
	u.waitImages()
	p, err := u.conn.Provisioner(ctx, provision.Options{ForceFormat: u.o.ForceFormat, Out: u.out, Ahead: provision.DefaultAhead})
	if err != nil {
		return nil, err
	}
	u.prov = p
	start := time.Now()
	u.report.Summary, err = p.Run(ctx)
	u.provisionTook = time.Since(start)
	if err == nil && u.layer != nil {
		u.report.Layer = u.layer.Key
		markLayerUsed(u.layer, u.out)
		if u.report.Summary.Changed > 0 {
			fmt.Fprintf(u.out, "layer %s: provisioning changed %d step(s) of the VM booted from it: the layer did not hold the lab as its inputs say (the lab is right now; `labctl cache prune --all` drops the layers)\n", u.layer.Key, u.report.Summary.Changed)
		}
	}
	return nil, err
}

// wantsReady says whether up takes the ready snapshot: after the lab's first green provision,
// of a VM the lab recorded, where the provider takes snapshots.
func (u *upRun) wantsReady() bool {
	st := u.lab.State()
	return st.Ready == nil && st.DomainUUID != "" && u.boot.p != nil && u.boot.p.Snapshots() != nil
}

// Provision runs the provisioning steps on the lab's running VM (holding the lab's lock).
func (l *Lab) Provision(ctx context.Context, o ConnectOptions, opts provision.Options) (sum provision.Summary, err error) {
	unlock, err := l.Lock("provision")
	if err != nil {
		return sum, err
	}
	defer unlock()
	err = l.withProvisioner(ctx, o, opts, func(_ *Conn, p *provision.Provisioner) error {
		sum, err = p.Run(ctx)
		return err
	})
	return sum, err
}
