// Package provider is the one table of the Vagrant providers labctl renders for: each one's
// name, the boxes it boots, whether it runs under a libvirt daemon, and what it needs of the
// host. Everything else asks this table, never a provider's name. What labctl does with a
// provider's VM (its state, power, snapshots, disks, validation) is the lab package's, one
// implementation per provider (lab/libvirt.go, lab/virtualbox.go), and Vagrantfile.tmpl has a
// branch per provider.
package provider

import (
	"fmt"
	"strings"
)

// Info is what labctl knows of one provider.
type Info struct {
	// Name is Vagrant's name of the provider (--provider, VAGRANT_DEFAULT_PROVIDER).
	Name string
	// BuildsBoxes says the provider boots the boxes labctl builds (box.release): provider
	// auto picks it for them.
	BuildsBoxes bool
	// NamedBoxes says provider auto picks it for a box given by name (box.name): the recipe's.
	NamedBoxes bool
	// Libvirt says the VM runs under a libvirt daemon, chosen by lab.yaml's libvirt: (session
	// or system), and is reached through a qemu port forward on 127.0.0.1.
	Libvirt bool
	// Needs describes what the host needs to run the provider's VMs; Tools are the commands
	// that must be on PATH for it; Install says how to get them, where labctl knows how.
	Needs   string
	Tools   []string
	Install string
}

// Auto is lab.yaml's provider setting that lets labctl choose (For).
const Auto = "auto"

// table is every provider, the one that boots labctl's own boxes first.
var table = []Info{
	{Name: "libvirt", BuildsBoxes: true, Libvirt: true,
		Needs: "vagrant + vagrant-libvirt, libvirt, qemu", Tools: []string{"vagrant", "virsh", "qemu-system-x86_64"},
		Install: "run `make deps`"},
	{Name: "virtualbox", NamedBoxes: true,
		Needs: "VirtualBox", Tools: []string{"VBoxManage"}},
}

// Get returns the provider called name.
func Get(name string) (Info, bool) {
	for _, p := range table {
		if p.Name == name {
			return p, true
		}
	}
	return Info{}, false
}

// Names lists the providers, the one that boots labctl's boxes first.
func Names() []string {
	var names []string
	for _, p := range table {
		names = append(names, p.Name)
	}
	return names
}

// For resolves lab.yaml's provider setting: a provider's name as it is; auto the provider of
// labctl's own boxes when labctl builds the box, else the one for a box given by name.
func For(setting string, builtBox bool) string {
	if setting != Auto {
		return setting
	}
	for _, p := range table {
		if (builtBox && p.BuildsBoxes) || (!builtBox && p.NamedBoxes) {
			return p.Name
		}
	}
	return setting
}

// Builder is the provider that boots the boxes labctl builds.
func Builder() string {
	for _, p := range table {
		if p.BuildsBoxes {
			return p.Name
		}
	}
	return ""
}

// Of returns the provider called name, or an error that lists the supported ones.
func Of(name string) (Info, error) {
	if p, ok := Get(name); ok {
		return p, nil
	}
	return Info{}, fmt.Errorf("provider %q is not supported: use %s", name, strings.Join(Names(), " or "))
}
