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

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/vagrant"
)

// BootAttempts is how often up boots a VM whose guest did not answer SSH within Vagrant's boot
// timeout. Under software emulation a guest now and then never comes up (seen once in CI: no
// SSH, no guest agent in 300 s, while the boots before and after it of the same box took 50 s);
// one more boot is worth its minute, a third would hide a guest that cannot boot.
const BootAttempts = 2

// VMState returns the state of the lab's VM, in Vagrant's words: not_created when the lab has
// no Vagrantfile yet. A VM the lab recorded is asked of its provider directly (libvirt: a few
// milliseconds); otherwise Vagrant is asked (over a second of Ruby). An error means neither
// could tell, and says nothing about the VM.
func (l *Lab) VMState(ctx context.Context) (string, error) {
	p, err := l.provider()
	if err != nil {
		return "", err
	}
	v, closeV, err := l.Vagrant(nil)
	if err != nil {
		return "", err
	}
	defer closeV()
	state, _, err := l.vmState(ctx, p, v)
	return state, err
}

// vmState is VMState with the provider and driver at hand; direct says the provider answered
// (it can then watch the VM itself).
func (l *Lab) vmState(ctx context.Context, p Provider, v *vagrant.Driver) (state string, direct bool, err error) {
	if ok, err := l.hasVagrantfile(); err != nil || !ok {
		return "not_created", false, err
	}
	if state, ok, err := p.State(ctx, l.State().DomainUUID); ok || err != nil {
		return state, ok, err
	}
	state, err = v.Status(ctx)
	return state, false, err
}

// WriteVagrantfile renders the lab's Vagrantfile for the host values its provider resolves
// (recording them in the state) into its directory. It returns the provider's notice and
// whether the file changed.
func (l *Lab) writeVagrantfile(p Provider) (notice string, changed bool, err error) {
	vin, notice, err := p.Inputs(l)
	if err != nil {
		return "", false, err
	}
	if err := l.recordHost(p.Daemon(), vin.SSHPort, vin.Accel); err != nil {
		return "", false, err
	}
	vf, err := render.Vagrantfile(l.Spec, vin)
	if err != nil {
		return "", false, err
	}
	path := l.Path(labdir.Vagrantfile)
	before, _ := os.ReadFile(path)
	if bytes.Equal(before, vf) {
		return notice, false, nil
	}
	return notice, true, host.WriteFileAtomic(path, vf, 0o644)
}

// VagrantInputs resolves what the lab's Vagrantfile needs from the host (the provider says
// what), changing nothing; notice is a line for the user when a choice was made for them.
func (l *Lab) VagrantInputs() (render.VagrantInputs, string, error) {
	p, err := l.provider()
	if err != nil {
		return render.VagrantInputs{}, "", err
	}
	return p.Inputs(l)
}

// boot runs `vagrant up`, once more when the guest did not answer SSH within the boot
// timeout. What a new VM's creation made is recorded in the state (the domain's UUID, its
// volumes) after each `vagrant up`, whether it succeeded or not; created says whether anything
// was. A VM that existed before is left to labctl on a failure, never destroyed (its data disk
// holds the lab); one this run creates is removed by Vagrant, as by default.
func (l *Lab) boot(ctx context.Context, b *booting) (created bool, err error) {
	var upErr error
	for attempt := 1; ; attempt++ {
		if b.before != "running" {
			// This boot's console only: what an earlier boot printed would mislead.
			if err := l.freshConsole(); err != nil {
				return created, err
			}
		}
		fmt.Fprintf(b.out, "vm: vagrant up (%s, was %s)\n", b.p.Info().Name, b.before)
		upErr = b.v.Up(ctx, b.before != "not_created")
		if b.before == "not_created" {
			// Whatever `vagrant up` did, what it made is recorded now, or nothing may remove it.
			made, err := l.record(context.WithoutCancel(ctx), b.p, b.pre.own, b.boxKey)
			created = created || made
			if err != nil {
				fmt.Fprintf(b.out, "could not record what `vagrant up` created (%v): labctl will not remove it; run `labctl destroy` once libvirt answers\n", err)
				return created, l.withConsole(errOr(upErr, err))
			}
		}
		if attempt == BootAttempts || !vagrant.IsBootTimeout(upErr) || ctx.Err() != nil {
			break
		}
		if err := l.bootAgain(ctx, b.p, b.v, b.out); err != nil {
			return created, errors.Join(l.withConsole(upErr), err)
		}
	}
	if upErr != nil && vagrant.IsBootTimeout(upErr) && b.before != "not_created" {
		l.powerOffHung(context.WithoutCancel(ctx), b.p, b.v, b.out)
	}
	if upErr != nil {
		return created, l.withConsole(upErr)
	}
	return created, nil
}

func errOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// booting is what boot needs: the provider, the driver, the VM's state before, what existed
// under the lab's names before, the box's key, and where progress goes.
type booting struct {
	p      Provider
	v      *vagrant.Driver
	before string
	pre    claim
	boxKey string
	out    io.Writer
}

// claim reads what exists under the lab's names and splits it by ownership; a domain of the
// lab's name that is not the lab's is refused for verb, as is an inventory that cannot be read.
func (l *Lab) claim(ctx context.Context, p Provider, verb string) (claim, error) {
	inv, err := p.Inventory(ctx, l)
	if err != nil {
		return claim{}, fmt.Errorf("cannot tell what of lab %s exists in %s, so nothing was changed: %w", l.Spec.Name, p.Info().Name, err)
	}
	c := claimOf(inv, l.State(), l.vagrantID(p.Info().Name))
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
	if own.UUID == "" || l.State().DomainUUID == own.UUID {
		return nil
	}
	return l.recordDomain(own.UUID, "", own.VolumeNames())
}

// record writes into the state what a VM's creation made: the domain when Vagrant tracks it
// in the lab's directory, and the volumes under the lab's names that were not there before
// (pre). It reports whether anything was.
func (l *Lab) record(ctx context.Context, p Provider, pre Inventory, boxKey string) (bool, error) {
	inv, err := p.Inventory(ctx, l)
	if err != nil {
		return false, err
	}
	uuid, box := "", ""
	if inv.UUID != "" && inv.UUID == l.vagrantID(p.Info().Name) {
		uuid, box = inv.UUID, l.Spec.BoxName()+"@"+boxKey
	}
	var made []string
	for _, name := range inv.VolumeNames() {
		if !slices.Contains(pre.VolumeNames(), name) {
			made = append(made, name)
		}
	}
	if err := l.recordDomain(uuid, box, made); err != nil {
		return false, err
	}
	return l.State().DomainUUID != "" || len(made) > 0, nil
}

// boxFor makes sure the box a new VM boots from is built, added and whole in the provider.
func (l *Lab) boxFor(ctx context.Context, b *booting) error {
	key, err := l.EnsureBox(ctx, b.v, b.out)
	if err != nil {
		return err
	}
	b.boxKey = key
	if b.before != "not_created" || l.Spec.Box.Release == "" {
		return nil
	}
	r, err := build.BoxRecipeFor(l.Spec)
	if err != nil {
		return err
	}
	return b.p.CheckBox(ctx, r.File(), r.Flavour, b.out)
}
