package lab

import (
	"context"
	"fmt"
	"io"

	"github.com/labctl/labctl/lab/layer"

	"github.com/labctl/labctl/lab/provider"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// Provider is every act of labctl's that depends on the lab's Vagrant provider: what the host
// needs, what the Vagrantfile gets from the host, what exists of a lab outside Vagrant's
// record and what a VM leaves beyond `vagrant destroy`, the VM's state and power, snapshots,
// the box's copies, validation. Callers never ask which provider they have. Adding a provider
// is one implementation (a file like libvirt.go), its row in lab/provider, its branch in
// Vagrantfile.tmpl and its golden files.
type Provider interface {
	// Info is the provider's row in lab/provider's table.
	Info() provider.Info
	// Where names where the lab's VMs live for the user (libvirt: the daemon's URI); "" when
	// there is nothing to say beyond the provider.
	Where() string
	// Prepare makes the host ready to run the lab's VM, saying on out what it did.
	Prepare(ctx context.Context, out io.Writer) error
	// Inputs resolves the Vagrantfile's host values for the lab from its state, without
	// changing anything (a port is chosen when none is recorded); notice, when not empty, is
	// one line for the user. `up` records them in the state (recordHost).
	Inputs(l *Lab) (vin render.VagrantInputs, notice string, err error)
	// Daemon is the name of the daemon the VM runs under, kept in the state ("" for none).
	Daemon() string
	// Fits refuses a lab whose state says its VM lives elsewhere (libvirt: under the other
	// daemon), saying what to do.
	Fits(l *Lab) error
	// Inventory lists what exists under the lab's names (libvirt: the domain of its name with
	// its UUID and disks, the pool volumes named after it). An error means the provider could
	// not tell: nothing may then be created or destroyed.
	Inventory(ctx context.Context, l *Lab) (Inventory, error)
	// BeforeCreate readies the host for a VM this run is about to create (libvirt: another
	// SSH port when the recorded one is taken), saying on out what it did.
	BeforeCreate(ctx context.Context, l *Lab, out io.Writer) error
	// CheckBox makes sure the copy of the cached box file that a new VM boots from matches it
	// (libvirt: the pool volume vagrant-libvirt uploaded; one that differs is deleted, so that
	// it is uploaded again).
	CheckBox(ctx context.Context, boxFile, flavour string, out io.Writer) error
	// BoxAdded tidies up after a new build of a box was added to Vagrant (libvirt: the pool
	// copies of older builds, while no VM may be backed by them).
	BoxAdded(ctx context.Context, flavour string, out io.Writer)
	// Remove removes what of the lab's own a VM left beyond `vagrant destroy` (own comes from
	// claimOf: the domain by its UUID, the volumes by name) and says what it removed.
	Remove(ctx context.Context, own Inventory) ([]string, error)
	// State is the state of the VM the lab recorded (uuid), in Vagrant's words, read without
	// Vagrant; ok is false when the provider cannot (then Vagrant is asked).
	State(ctx context.Context, uuid string) (state string, ok bool, err error)
	// PowerOff pulls the plug of the lab's running VM (uuid as recorded) at once, keeping it
	// and its disks.
	PowerOff(ctx context.Context, uuid string, v *vagrant.Driver) error
	// Snapshots are the VM's snapshots by name, for the ready snapshot; nil when the
	// provider takes none (`labctl snapshot` goes through Vagrant).
	Snapshots() Snapshots
	// Layers keeps provisioned layers of the provider's VMs; nil when it keeps none.
	Layers() Layers
	// ValidateEnv prepares the host (or a stand-in under dir) for `vagrant validate` and
	// returns the environment it needs, and the host values to render the Vagrantfile with.
	ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, render.VagrantInputs, error)
}

// Layers makes, checks, uses and drops provisioned layers (lab/layer) in the provider.
type Layers interface {
	// BaseVolume names the provider's copy of a labctl box that a layer is a delta over.
	BaseVolume(flavour string) (string, error)
	// CheckLayer refuses a layer whose disks are not as recorded, or whose base is gone.
	CheckLayer(rec layer.Layer) error
	// BrokenLayer says, without reading the disks through, why a layer cannot be used.
	BrokenLayer(rec layer.Layer) string
	// UseLayer readies a new VM of the lab to boot from the layer: the box and data disk to
	// name in its Vagrantfile.
	UseLayer(ctx context.Context, l *Lab, rec layer.Layer) (box, disk string, err error)
	// CaptureLayer makes the layer of in from the lab's ready snapshot; the tools' output
	// goes to log.
	CaptureLayer(ctx context.Context, l *Lab, in layer.Inputs, flavour string, log io.Writer) (layer.Layer, error)
	// DropLayer deletes the layer's disks (its record is the caller's).
	DropLayer(ctx context.Context, rec layer.Layer) error
	// LayersInUse names the layer disks some VM is backed by.
	LayersInUse(ctx context.Context) (map[string]bool, error)
}

// Snapshots take, revert to and delete a VM's snapshots by name.
type Snapshots interface {
	Take(ctx context.Context, uuid, name, description string) error
	Revert(ctx context.Context, uuid, name string) error
	Delete(ctx context.Context, uuid, name string) error
}

// providers makes the Provider of each provider in lab/provider's table, for a spec.
var providers = map[string]func(*spec.Spec) (Provider, error){
	"libvirt":    newLibvirt,
	"virtualbox": func(*spec.Spec) (Provider, error) { return virtualbox{}, nil },
}

// ProviderOf returns the provider a spec boots with (for a libvirt lab, on the daemon its
// libvirt setting names).
func ProviderOf(s *spec.Spec) (Provider, error) {
	info, err := provider.Of(s.ProviderFor())
	if err != nil {
		return nil, err
	}
	mk, ok := providers[info.Name]
	if !ok {
		return nil, fmt.Errorf("provider %s has no implementation in labctl: add one to lab (see lab/provider)", info.Name)
	}
	return mk(s)
}

// provider is the lab's provider, resolved once, refused when the lab's VM was created under
// another daemon than its spec now names.
func (l *Lab) provider() (Provider, error) {
	if l.prov != nil {
		return l.prov, nil
	}
	p, err := ProviderOf(l.Spec)
	if err != nil {
		return nil, err
	}
	if err := p.Fits(l); err != nil {
		return nil, err
	}
	l.prov = p
	return p, nil
}

// Where names where the lab's VM lives for the user (libvirt: the daemon's URI); "" when the
// provider says nothing more, or cannot be resolved.
func (l *Lab) Where() string {
	p, err := l.provider()
	if err != nil {
		return ""
	}
	return p.Where()
}
