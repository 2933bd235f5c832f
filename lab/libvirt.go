package lab

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/provider"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// libvirt runs the VM under qemu through vagrant-libvirt, reached only through a 127.0.0.1
// port forward; its disks live in labctl's storage pool of the daemon virt, and everything
// labctl asks of the VM goes to libvirt by the domain's recorded UUID, not through Vagrant.
type libvirt struct{ virt host.Libvirt }

func newLibvirt(s *spec.Spec) (Provider, error) {
	virt, err := host.LibvirtFor(s.Libvirt)
	if err != nil {
		return nil, err
	}
	return libvirt{virt}, nil
}

func (libvirt) Info() provider.Info { p, _ := provider.Get("libvirt"); return p }

func (p libvirt) Where() string { return p.virt.URI() }

func (p libvirt) Daemon() string { return p.virt.Name() }

// Fits refuses a daemon other than the one the lab's VM was created under: the VM, its disks
// and its snapshots are only known to that one.
func (p libvirt) Fits(l *Lab) error {
	recorded := l.State().Libvirt
	if recorded == "" || recorded == p.virt.Name() {
		return nil
	}
	was, _ := host.LibvirtFor(recorded)
	return fmt.Errorf("lab %s's VM was created under libvirt %s (%s), and this command would use %s (%s): set libvirt: %s in lab.yaml (or pass --libvirt %s), or `labctl destroy --libvirt %s` the lab first",
		l.Spec.Name, was.Name(), was.URI(), p.virt.Name(), p.virt.URI(), was.Name(), was.Name(), was.Name())
}

func (p libvirt) Prepare(ctx context.Context, out io.Writer) error {
	if !p.virt.Session && os.Geteuid() != 0 {
		if err := host.QemuReaches(host.VagrantHome()); err != nil {
			return err
		}
	}
	return p.virt.Ensure(ctx, out)
}

func (p libvirt) Inputs(l *Lab) (render.VagrantInputs, string, error) {
	st := l.State()
	vin := render.VagrantInputs{Pool: host.Pool, Session: p.virt.Session, SSHPort: st.SSHPort, Console: l.Log(labdir.ConsoleLog)}
	accel, notice, err := host.Accel(l.Spec.Accelerator)
	if err != nil {
		return vin, "", err
	}
	vin.Accel = accel
	if vin.SSHPort == 0 {
		vin.SSHPort = namedPort(l.Spec.Name)
	}
	if l.Spec.Box.Release != "" {
		vin.SSHKey = host.VagrantBoxKey(l.Spec.BoxName())
	}
	if st.Layer != nil {
		vin.LayerBox, vin.LayerDisk = st.Layer.Box, st.Layer.Disk
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

// BeforeCreate makes sure the SSH port forward of a new VM is free: the recorded port, or the
// one derived from the lab's name; when it is taken, a free one is recorded instead.
func (libvirt) BeforeCreate(ctx context.Context, l *Lab, out io.Writer) error {
	port := l.State().SSHPort
	if port == 0 {
		port = namedPort(l.Spec.Name)
	}
	if host.PortFree(port) {
		return nil
	}
	free, err := host.FreePort()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "host: port %d is taken, using %d\n", port, free)
	return l.recordPort(free)
}

// namedPort is the SSH port forward of a lab that has recorded none yet: derived from its
// name (20000-29999, below the kernel's ephemeral ports), so that rendering the lab twice
// gives the same Vagrantfile. `up` records it, or a free one when it is taken.
func namedPort(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 20000 + int(h.Sum32()%10000)
}

func (p libvirt) CheckBox(ctx context.Context, boxFile, flavour string, out io.Writer) error {
	return checkBoxVolume(ctx, p.virt, boxFile, flavour, out)
}

func (p libvirt) BoxAdded(ctx context.Context, flavour string, out io.Writer) {
	pruneBoxVolumes(ctx, p.virt, flavour, out)
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

// State asks libvirt for the domain's state (a few milliseconds, where `vagrant status` takes
// over a second of Ruby); a domain libvirt does not answer for is left to Vagrant.
func (p libvirt) State(ctx context.Context, uuid string) (string, bool, error) {
	if uuid == "" {
		return "", false, nil
	}
	out, err := p.virt.Virsh(ctx, "domstate", uuid)
	if err != nil {
		return "", false, nil
	}
	return vagrantWord(strings.TrimSpace(out)), true, nil
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

// PowerOff is libvirt's `destroy` of the recorded domain (its disks stay), or `vagrant halt
// --force` for a VM labctl recorded no UUID of. Not vagrant-libvirt's halt --force for a
// hung guest where it can be helped: it asks the guest by ACPI first, for
// graceful_halt_timeout (60 s), and then fails (fog's wait_for timeout), the guest still on.
func (p libvirt) PowerOff(ctx context.Context, uuid string, v *vagrant.Driver) error {
	if uuid == "" {
		_, err := v.Run(ctx, "halt", "--force")
		return err
	}
	return p.virt.PowerOff(ctx, uuid)
}

func (p libvirt) Snapshots() Snapshots { return p }

func (p libvirt) Layers() Layers { return p }

func (p libvirt) Take(ctx context.Context, uuid, name, description string) error {
	_, err := p.virt.Virsh(ctx, "snapshot-create-as", "--domain", uuid, "--name", name, "--description", description, "--atomic")
	return err
}

func (p libvirt) Revert(ctx context.Context, uuid, name string) error {
	_, err := p.virt.Virsh(ctx, "snapshot-revert", "--domain", uuid, "--snapshotname", name, "--running")
	return err
}

func (p libvirt) Delete(ctx context.Context, uuid, name string) error {
	_, err := p.virt.Virsh(ctx, "snapshot-delete", "--domain", uuid, "--snapshotname", name)
	return err
}

// ValidateEnv starts libvirtd when nothing runs it: vagrant-libvirt validates against a live
// daemon (the one the Vagrantfile names), as `up` needs it too. The host values are fixed:
// validation does not depend on them.
func (p libvirt) ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, render.VagrantInputs, error) {
	vin := render.VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: host.Pool, Session: p.virt.Session}
	return nil, vin, p.virt.Ensure(ctx, out)
}
