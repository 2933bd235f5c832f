package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
)

// Provider is what differs between the Vagrant providers labctl drives: what the host needs,
// what the Vagrantfile gets from the host, what exists of a lab outside Vagrant's record, and
// what a VM leaves beyond `vagrant destroy`. Adding a provider is one implementation here (and
// its branch in Vagrantfile.tmpl).
type Provider interface {
	// Name is Vagrant's name of the provider.
	Name() string
	// Prepare makes the host ready to run the lab's VM, saying on out what it did.
	Prepare(ctx context.Context, out io.Writer) error
	// Inputs resolves the Vagrantfile's host values for lab l, keeping them in its state; the
	// notice (may be empty) is one line for the user.
	Inputs(l *Lab) (vin render.VagrantInputs, notice string, err error)
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
	CheckBox(ctx context.Context, boxFile, release string, out io.Writer) error
	// Remove removes what of the lab's own a VM left beyond `vagrant destroy` (own comes from
	// claimOf: the domain by its UUID, the volumes by name) and says what it removed.
	Remove(ctx context.Context, own Inventory) ([]string, error)
	// ValidateEnv prepares the host (or a stand-in under dir) for `vagrant validate` and
	// returns the environment it needs.
	ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, error)
}

// ProviderOf returns the provider a spec boots with (for a libvirt lab, on the daemon its
// libvirt setting names).
func ProviderOf(s *spec.Spec) (Provider, error) {
	switch name := s.ProviderFor(); name {
	case "libvirt":
		virt, err := host.LibvirtFor(s.Libvirt)
		if err != nil {
			return nil, err
		}
		return libvirt{virt}, nil
	case "virtualbox":
		return virtualbox{}, nil
	default:
		return nil, fmt.Errorf("provider %q is not supported: use virtualbox or libvirt", name)
	}
}

// provider is the provider of the lab's VM, refused when the lab's VM was created under
// another libvirt daemon than its spec now names.
func (l *Lab) provider() (Provider, error) {
	if l.Spec.ProviderFor() != "libvirt" {
		return ProviderOf(l.Spec)
	}
	virt, err := l.Libvirt()
	if err != nil {
		return nil, err
	}
	return libvirt{virt}, nil
}

// libvirt runs the VM under qemu through vagrant-libvirt, reached only through a 127.0.0.1
// port forward; its disks live in labctl's storage pool of the daemon virt.
type libvirt struct{ virt host.Libvirt }

func (libvirt) Name() string { return "libvirt" }

func (p libvirt) Prepare(ctx context.Context, out io.Writer) error {
	if !p.virt.Session && os.Geteuid() != 0 {
		if err := host.QemuReaches(host.VagrantHome()); err != nil {
			return err
		}
	}
	return p.virt.Ensure(ctx, out)
}

func (p libvirt) Inputs(l *Lab) (render.VagrantInputs, string, error) {
	vin := render.VagrantInputs{Pool: host.Pool, Session: p.virt.Session}
	st, err := l.LoadState()
	if err != nil {
		return vin, "", err
	}
	if err := l.sameLibvirt(st, p.virt); err != nil {
		return vin, "", err
	}
	st.Libvirt = p.virt.Name()
	accel, notice, err := host.Accel(l.Spec.Accelerator)
	if err != nil {
		return vin, "", err
	}
	if st.SSHPort == 0 {
		if st.SSHPort, err = host.FreePort(); err != nil {
			return vin, "", err
		}
	}
	st.Accel = accel
	if err := l.SaveState(st); err != nil {
		return vin, "", err
	}
	vin.SSHPort, vin.Accel = st.SSHPort, accel
	vin.Console = l.ConsoleLog()
	if l.Spec.Box.Release != "" {
		vin.SSHKey = host.VagrantBoxKey(l.Spec.BoxName())
	}
	return vin, notice, nil
}

func (p libvirt) Inventory(ctx context.Context, l *Lab) (Inventory, error) {
	inv := Inventory{Domain: l.Spec.DomainName()}
	if err := p.virt.Start(ctx, io.Discard); err != nil {
		return inv, fmt.Errorf("libvirt does not answer: %w", err)
	}
	uuid, err := p.virt.DomainUUID(ctx, inv.Domain)
	if err != nil {
		return inv, err
	}
	if uuid != "" {
		if inv.Disks, err = p.virt.DomainDisks(ctx, uuid); err != nil {
			return inv, err
		}
	}
	inv.UUID = uuid
	vols, err := p.virt.Volumes(ctx)
	if err != nil {
		return inv, err
	}
	for _, v := range vols {
		if strings.HasPrefix(v.Name, l.Spec.DomainPrefix()) {
			inv.Volumes = append(inv.Volumes, v)
		}
	}
	return inv, nil
}

func (libvirt) BeforeCreate(ctx context.Context, l *Lab, out io.Writer) error {
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	if st.SSHPort != 0 && !host.PortFree(st.SSHPort) {
		fmt.Fprintf(out, "host: port %d is taken, picking another\n", st.SSHPort)
		st.SSHPort = 0
		return l.SaveState(st)
	}
	return nil
}

func (p libvirt) CheckBox(ctx context.Context, boxFile, release string, out io.Writer) error {
	return checkBoxVolume(ctx, p.virt, boxFile, release, out)
}

func (p libvirt) Remove(ctx context.Context, own Inventory) ([]string, error) {
	var gone []string
	if own.UUID != "" {
		if err := p.virt.RemoveDomain(ctx, own.UUID); err != nil {
			return gone, err
		}
		gone = append(gone, fmt.Sprintf("domain %s (UUID %s)", own.Domain, own.UUID))
	}
	for _, v := range own.Volumes {
		if err := p.virt.DeleteVolume(ctx, v.Name); err != nil {
			return gone, err
		}
		gone = append(gone, "volume "+v.Name)
	}
	return gone, nil
}

func (p libvirt) ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, error) {
	// vagrant-libvirt validates against a live libvirtd, as `up` needs it too.
	return nil, p.virt.Ensure(ctx, out)
}

// virtualbox is the recipe's provider. Nothing boots it on a host without VirtualBox, but its
// Vagrantfile renders and validates everywhere.
type virtualbox struct{}

func (virtualbox) Name() string { return "virtualbox" }

func (virtualbox) Prepare(ctx context.Context, out io.Writer) error {
	if _, err := exec.LookPath("VBoxManage"); err != nil {
		return fmt.Errorf("provider virtualbox: VirtualBox is not installed on this host: use a libvirt preset (e.g. --preset %s), or install VirtualBox", spec.DefaultPreset)
	}
	return nil
}

func (virtualbox) Inputs(*Lab) (render.VagrantInputs, string, error) {
	return render.VagrantInputs{Pool: host.Pool}, "", nil
}

// Vagrant alone tracks a VirtualBox VM: nothing of the lab exists outside its record.
func (virtualbox) Inventory(context.Context, *Lab) (Inventory, error) { return Inventory{}, nil }

func (virtualbox) BeforeCreate(context.Context, *Lab, io.Writer) error { return nil }

func (virtualbox) CheckBox(context.Context, string, string, io.Writer) error { return nil }

func (virtualbox) Remove(context.Context, Inventory) ([]string, error) { return nil, nil }

// vboxStub stands in for VBoxManage: it only answers --version, so that `vagrant validate`
// checks VirtualBox settings ("The following settings shouldn't exist") on a host without it.
const vboxStub = "#!/bin/sh\n# labctl's stand-in for VBoxManage: only answers --version, so that\n# `vagrant validate` checks VirtualBox settings on a host without VirtualBox.\ncase \"$1\" in --version|-v) echo 7.0.14r161095; exit 0;; esac\necho \"VBoxManage stub: $*: not available\" >&2\nexit 1\n"

func (virtualbox) ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, error) {
	if _, err := exec.LookPath("VBoxManage"); err == nil {
		return nil, nil
	} else if !errors.Is(err, exec.ErrNotFound) {
		return nil, err
	}
	stubDir := filepath.Join(dir, "stub-bin")
	if err := os.MkdirAll(stubDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stubDir, "VBoxManage"), []byte(vboxStub), 0o755); err != nil {
		return nil, err
	}
	return []string{"PATH=" + stubDir + string(os.PathListSeparator) + os.Getenv("PATH")}, nil
}
