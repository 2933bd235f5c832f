package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/vagrant"
)

// VagrantInputs resolves what the lab's Vagrantfile needs from the host (the provider says
// what), with a one-line notice when a choice was made for the user.
func (l *Lab) VagrantInputs() (render.VagrantInputs, string, error) {
	p, err := l.provider()
	if err != nil {
		return render.VagrantInputs{}, "", err
	}
	return p.Inputs(l)
}

// WriteVagrantfile renders the lab's Vagrantfile into its directory; it returns the notice of
// VagrantInputs.
func (l *Lab) WriteVagrantfile() (string, error) {
	vin, notice, err := l.VagrantInputs()
	if err != nil {
		return "", err
	}
	vf, err := render.Vagrantfile(l.Spec, vin)
	if err != nil {
		return "", err
	}
	return notice, host.WriteFileAtomic(l.Path("Vagrantfile"), vf, 0o644)
}

// VMState returns the state of the lab's VM, in Vagrant's words: not_created when the lab has
// no Vagrantfile yet. A libvirt VM the lab recorded (its domain's UUID) is asked of libvirt
// directly, in a few milliseconds; otherwise Vagrant is asked (over a second of Ruby). An
// error means neither could tell, and says nothing about the VM.
func (l *Lab) VMState(ctx context.Context, v *vagrant.Driver) (string, error) {
	if _, err := os.Stat(l.Path("Vagrantfile")); errors.Is(err, os.ErrNotExist) {
		return "not_created", nil
	} else if err != nil {
		return "", err
	}
	if st, err := l.LoadState(); err == nil && st.DomainUUID != "" && l.Spec.ProviderFor() == "libvirt" {
		virt, err := l.libvirtOf(st)
		if err != nil {
			return "", err
		}
		if out, err := virt.Virsh(ctx, "domstate", st.DomainUUID); err == nil {
			return vagrantWord(strings.TrimSpace(out)), nil
		}
	}
	return v.Status(ctx)
}

// vagrantWord is vagrant-libvirt's name for a libvirt domain state.
func vagrantWord(domstate string) string {
	switch domstate {
	case "shut off":
		return "shutoff"
	case "in shutdown":
		return "shutting_down"
	}
	return strings.ReplaceAll(domstate, " ", "_")
}

// Booted is what Boot did.
type Booted struct {
	// Before is the VM's state before the boot, as Vagrant read it (not_created: none).
	Before string
	// Created says this run created a VM, or disks for one, and recorded them as the lab's
	// in its state: what a failed `up` may remove. Never true when a state could not be read.
	Created bool
	// Phases is how long each phase took.
	Phases map[string]time.Duration
}

// Boot prepares the host (provider, box) and brings the VM up with Vagrant. Progress goes to
// out. Before changing anything it reads the VM's state and what exists under the lab's
// names; it stops, changing nothing, when either cannot be read or when a VM of the lab's name
// is not the lab's. What a new VM's creation made is recorded in state.json (the domain's
// UUID, its volumes), whether `vagrant up` succeeded or not.
func Boot(ctx context.Context, l *Lab, v *vagrant.Driver, out io.Writer) (Booted, error) {
	b := Booted{Phases: map[string]time.Duration{}}
	start := time.Now()
	p, err := l.provider()
	if err != nil {
		return b, err
	}
	if err := p.Prepare(ctx, out); err != nil {
		return b, err
	}
	if b.Before, err = l.VMState(ctx, v); err != nil {
		return b, fmt.Errorf("cannot tell whether the lab's VM exists, so nothing was changed: %w", err)
	}
	pre, err := l.claim(ctx, p, "up")
	if err != nil {
		return b, err
	}
	if b.Before == "not_created" {
		if err := l.checkNothingLeft(pre); err != nil {
			return b, err
		}
		if err := p.BeforeCreate(ctx, l, out); err != nil {
			return b, err
		}
	} else if err := l.adopt(pre.own); err != nil {
		return b, err
	}
	before, _ := os.ReadFile(l.Path("Vagrantfile"))
	notice, err := l.WriteVagrantfile()
	if err != nil {
		return b, err
	}
	if notice != "" {
		fmt.Fprintln(out, notice)
	}
	b.Phases["host"] = time.Since(start)
	if after, err := os.ReadFile(l.Path("Vagrantfile")); err == nil && b.Before == "running" && bytes.Equal(before, after) {
		// Nothing for Vagrant to do: the VM runs from this very Vagrantfile.
		fmt.Fprintln(out, "vm: running, its Vagrantfile unchanged (vagrant up not needed)")
		return b, nil
	}
	start = time.Now()
	boxKey, err := EnsureBox(ctx, l.Spec, v, out)
	if err != nil {
		return b, err
	}
	if b.Before == "not_created" && l.Spec.Box.Release != "" {
		r, err := build.BoxRecipeFor(l.Spec)
		if err == nil {
			err = p.CheckBox(ctx, r.File(), r.Flavour, out)
		}
		if err != nil {
			return b, err
		}
	}
	b.Phases["box"] = time.Since(start)
	start = time.Now()
	var upErr error
	for boot := 1; ; boot++ {
		if b.Before != "running" {
			// This boot's console only: what an earlier boot printed would mislead.
			if err := l.freshConsole(); err != nil {
				return b, err
			}
		}
		fmt.Fprintf(out, "vm: vagrant up (%s, was %s)\n", p.Name(), b.Before)
		// A VM that existed before is left to labctl on a failure, never destroyed (its data
		// disk holds the lab); one this run creates is removed by Vagrant, as by default.
		upErr = v.Up(ctx, p.Name(), b.Before != "not_created")
		if b.Before == "not_created" {
			// Whatever `vagrant up` did, what it made is recorded now, or nothing may remove it.
			created, err := l.record(context.WithoutCancel(ctx), p, pre.own, boxKey)
			b.Created = b.Created || created
			if err != nil {
				fmt.Fprintf(out, "could not record what `vagrant up` created (%v): labctl will not remove it; run `labctl destroy` once libvirt answers\n", err)
				if upErr == nil {
					upErr = err
				}
				break
			}
		}
		if boot == BootAttempts || !vagrant.IsBootTimeout(upErr) || ctx.Err() != nil {
			break
		}
		if err := l.bootAgain(ctx, v, out); err != nil {
			return b, errors.Join(l.withConsole(upErr), err)
		}
	}
	if upErr != nil {
		if vagrant.IsBootTimeout(upErr) && b.Before != "not_created" {
			l.powerOffHung(context.WithoutCancel(ctx), v, out)
		}
		return b, l.withConsole(upErr)
	}
	b.Phases["vagrant up"] = time.Since(start)
	return b, nil
}

// claim reads what exists under the lab's names and splits it by ownership; a domain of the
// lab's name that is not the lab's is refused for verb, as is an inventory that cannot be read.
func (l *Lab) claim(ctx context.Context, p Provider, verb string) (claim, error) {
	inv, err := p.Inventory(ctx, l)
	if err != nil {
		return claim{}, fmt.Errorf("cannot tell what of lab %s exists in %s, so nothing was changed: %w", l.Spec.Name, p.Name(), err)
	}
	st, err := l.LoadState()
	if err != nil {
		return claim{}, err
	}
	c := claimOf(inv, st, l.vagrantID(p.Name()))
	if c.foreignDomain != "" {
		return c, l.refuseForeign(c, verb)
	}
	return c, nil
}

// checkNothingLeft fails, naming it, when something under the lab's names exists while Vagrant
// tracks no VM for it: vagrant-libvirt would fail on it, and it may not be the lab's.
func (l *Lab) checkNothingLeft(c claim) error {
	if c.own.UUID != "" || len(c.own.Volumes) > 0 {
		what := c.own.VolumeNames()
		if c.own.UUID != "" {
			what = append([]string{"domain " + c.own.Domain}, what...)
		}
		return fmt.Errorf("%s of this lab are left from an earlier run that Vagrant no longer tracks: run `labctl destroy` (it removes them), then `labctl up` again", strings.Join(what, ", "))
	}
	if len(c.foreignVolumes) > 0 {
		return fmt.Errorf("pool volumes %s are named after this lab, but it did not create them (another checkout's lab of the same name?): labctl leaves them alone and creates nothing over them; give this lab another name, or delete them (`virsh vol-delete --pool %s NAME`) if you know nobody uses them", strings.Join(c.foreignVolumes, ", "), host.Pool)
	}
	return nil
}

// adopt records a VM the lab owns but has not recorded yet (one made before labctl kept UUIDs).
func (l *Lab) adopt(own Inventory) error {
	st, err := l.LoadState()
	if err != nil || own.UUID == "" || st.DomainUUID == own.UUID {
		return err
	}
	st.DomainUUID = own.UUID
	st.Volumes = mergeNames(st.Volumes, own.VolumeNames())
	return l.SaveState(st)
}

// record writes into the state what a VM's creation made: the domain when Vagrant tracks it
// in the lab's directory, and the volumes under the lab's names that were not there before
// (pre). It reports whether anything was.
func (l *Lab) record(ctx context.Context, p Provider, pre Inventory, boxKey string) (bool, error) {
	inv, err := p.Inventory(ctx, l)
	if err != nil {
		return false, err
	}
	st, err := l.LoadState()
	if err != nil {
		return false, err
	}
	if inv.UUID != "" && inv.UUID == l.vagrantID(p.Name()) {
		st.DomainUUID = inv.UUID
		st.Box = l.Spec.BoxName() + "@" + boxKey
	}
	var made []string
	for _, name := range inv.VolumeNames() {
		if !slices.Contains(pre.VolumeNames(), name) {
			made = append(made, name)
		}
	}
	st.Volumes = mergeNames(st.Volumes, made)
	return st.DomainUUID != "" || len(made) > 0, l.SaveState(st)
}

func mergeNames(a, b []string) []string {
	for _, n := range b {
		if !slices.Contains(a, n) {
			a = append(a, n)
		}
	}
	return a
}

// Destroy removes the lab's VM and what of the lab's own it left (its domain, by UUID, and
// the volumes the lab recorded), the pinned host key and the state. It destroys nothing when
// it cannot tell what exists, or when a VM of the lab's name is not the lab's; volumes named
// after the lab that it did not create are left, and named in the error. It returns what it
// removed.
func Destroy(ctx context.Context, l *Lab, v *vagrant.Driver) ([]string, error) {
	var gone []string
	p, err := l.provider()
	if err != nil {
		return gone, err
	}
	_, statErr := os.Stat(l.Path("Vagrantfile"))
	if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
		return gone, statErr
	}
	if statErr == nil {
		if err := p.Prepare(ctx, io.Discard); err != nil {
			return gone, err
		}
	}
	c, err := l.claim(ctx, p, "destroy")
	if err != nil {
		return gone, err
	}
	st, err := l.LoadState()
	if err != nil {
		return gone, err
	}
	if vid := l.vagrantID(p.Name()); statErr == nil && vid != "" {
		if err := v.Destroy(ctx); err != nil {
			return gone, err
		}
		gone = append(gone, "VM")
		// Vagrant forgets the VM: what is left is claimed by what was the lab's before.
		if st.DomainUUID == "" {
			st.DomainUUID = c.own.UUID
		}
		st.Volumes = mergeNames(st.Volumes, c.own.VolumeNames())
	}
	inv, err := p.Inventory(ctx, l)
	if err != nil {
		return gone, fmt.Errorf("cannot tell what the VM left: %w (run `labctl destroy` again)", err)
	}
	left := claimOf(inv, st, "")
	if left.foreignDomain != "" {
		left.own.UUID = ""
	}
	removed, err := p.Remove(ctx, left.own)
	gone = append(gone, removed...)
	if err != nil {
		return gone, err
	}
	for _, f := range []string{l.KnownHosts(), l.Path("state.json")} {
		if err := os.Remove(f); err == nil {
			gone = append(gone, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return gone, err
		}
	}
	if len(left.foreignVolumes) > 0 {
		return gone, fmt.Errorf("left pool volumes %s: they are named after lab %s but it did not create them; delete them (`virsh vol-delete --pool %s NAME`) if you know nobody uses them", strings.Join(left.foreignVolumes, ", "), l.Spec.Name, host.Pool)
	}
	return gone, nil
}
