// Package spec is the lab.yaml schema: strict decoding, defaults, validation that reports
// every problem at once, the embedded presets, and the one way a command finds its lab
// (Resolve). It is where every lab starts; nothing here touches the host.
package spec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/labctl/labctl/lab/provider"
)

// Spec is one lab: a VM with an extra btrfs disk, an unprivileged user with a subordinate id
// range, and the containers to create, each inside its parent. It is what lab.yaml decodes to.
type Spec struct {
	// Name names the lab; its state lives under tmp/<name>/.
	Name string `yaml:"name"`
	// Box is the Vagrant box the VM boots.
	Box Box `yaml:"box"`
	// Provider is the Vagrant provider: virtualbox, libvirt or auto.
	Provider string `yaml:"provider"`
	// CPUs and Memory (MiB) size the VM.
	CPUs   int `yaml:"cpus"`
	Memory int `yaml:"memory"`
	// Accelerator chooses how libvirt runs the VM: auto, kvm or tcg.
	Accelerator string `yaml:"accelerator"`
	// BootTimeout is how long (seconds) a boot may take to answer SSH: Vagrant's
	// config.vm.boot_timeout. A boot that takes longer is tried once more.
	BootTimeout int `yaml:"boot_timeout"`
	// Libvirt chooses the libvirt daemon of a libvirt VM: session (the user's own,
	// qemu:///session), system (qemu:///system: root, or a member of group libvirt), or auto
	// (system for root, session for everyone else).
	Libvirt string `yaml:"libvirt"`
	// Kernel is a go-version constraint the guest kernel must satisfy (compared on Core()).
	Kernel string `yaml:"kernel"`
	// Disk is the extra data disk that becomes the btrfs filesystem.
	Disk Disk `yaml:"disk"`
	// Btrfs says where and how the data disk is mounted.
	Btrfs Btrfs `yaml:"btrfs"`
	// User is the unprivileged user that owns the containers.
	User string `yaml:"user"`
	// IDMap is the user's subordinate uid/gid range.
	IDMap IDMap `yaml:"idmap"`
	// Network is how containers reach the guest's bridge.
	Network Network `yaml:"network"`
	// LXC says where LXC comes from and which version the lab expects.
	LXC LXC `yaml:"lxc"`
	// Containers are created in order; each names its parent ("" for the VM).
	Containers []Container `yaml:"containers"`
}

// Box names the Vagrant box: either Name (an existing box) or Release (a Debian release that
// labctl builds itself with `labctl box build`).
type Box struct {
	Name    string `yaml:"name"`
	Release string `yaml:"release"`
	// Kernel is the apt suite the kernel of a box labctl builds comes from: empty for the
	// release's own, or any suite of the host's mirror (its kernel installed into the
	// release's userland: bookworm-backports 6.12, bullseye 5.10 into forky, ...). The box's
	// cache key includes it.
	Kernel string `yaml:"kernel,omitempty"`
	// Cgroup is the cgroup hierarchy the VM boots on: v2 (the unified one: every release's
	// default) or v1, where the release's systemd and the kernel still allow it.
	Cgroup string `yaml:"cgroup,omitempty"`
}

// Disk is the extra data disk.
type Disk struct {
	// Size is the disk's virtual size, e.g. "20GiB" or "300GiB" (sparse).
	Size string `yaml:"size"`
	// Image is the VirtualBox disk file, relative to the lab directory (created only when it
	// does not exist). libvirt keeps the disk as a volume in labctl's storage pool.
	Image string `yaml:"image"`
	// Bus is the controller bus; only "sata" is supported.
	Bus string `yaml:"bus"`
	// Controller is the VirtualBox storage controller name.
	Controller string `yaml:"controller"`
	// Port and Device are the SATA port and device (VirtualBox).
	Port   int `yaml:"port"`
	Device int `yaml:"device"`
	// GuestDevice pins the disk's device name in the guest (e.g. /dev/sdb). Empty: found by
	// its properties (size, no partition table, no filesystem, not the root disk).
	GuestDevice string `yaml:"guest_device"`
}

// Btrfs is the data filesystem.
type Btrfs struct {
	// MountPoint is where the disk is mounted and where LXC keeps containers (lxc.lxcpath).
	MountPoint string `yaml:"mount_point"`
	// Options are the fstab mount options.
	Options []string `yaml:"options"`
	// FstabBy is how fstab names the disk: uuid (default) or device (the recipe's /dev/sdb).
	FstabBy string `yaml:"fstab_by"`
}

// IDMap is a subordinate id range: container ids 0..Count-1 map to Start..Start+Count-1.
type IDMap struct {
	Start int `yaml:"start"`
	Count int `yaml:"count"`
}

// Network is the containers' network.
type Network struct {
	Type     string `yaml:"type"`
	Link     string `yaml:"link"`
	MaxVeths int    `yaml:"max_veths"`
	HWAddr   string `yaml:"hwaddr"`
}

// LXC says where the guest gets LXC and which version is expected.
type LXC struct {
	// Suite is the apt suite LXC comes from: for a box labctl builds, any suite of the host's
	// mirror, whose LXC is baked into the box and the images (the LXC under test, apart from
	// the kernel); on another box, the suite the guest installs it from (trusty-backports).
	// Empty: the release's own.
	Suite string `yaml:"suite"`
	// Version is the LXC version the lab targets; `labctl render` renders its dialect.
	// Provisioning renders for the version the guest really has.
	Version string `yaml:"version"`
	// Expect is a go-version constraint the guest's LXC must satisfy.
	Expect string `yaml:"expect"`
	// Source builds the LXC under test from source, for a box labctl builds: a release
	// tarball (.tar.gz, .tar.xz, ...) or a git checkout, as a path relative to the directory
	// labctl runs in, or absolute. The build runs on the host (a build chroot of the box's
	// release); its tree is laid over the release's LXC in the box and in the images.
	Source string `yaml:"source,omitempty"`
	// Ref is the commit or tag of a git checkout to build (default HEAD).
	Ref string `yaml:"ref,omitempty"`
}

// Container is one LXC container of the lab.
type Container struct {
	Name string `yaml:"name"`
	// Parent is the container this one runs inside; empty for the VM.
	Parent string `yaml:"parent"`
	// Unprivileged creates the container as the lab user with the idmap.
	Unprivileged bool `yaml:"unprivileged"`
	// Backing is the backing store: btrfs or dir.
	Backing string `yaml:"backing"`
	// Image is where the rootfs comes from.
	Image Image `yaml:"image"`
	// Nesting lets the container run containers itself.
	Nesting bool `yaml:"nesting"`
	// Autostart brings the container back when the VM (or its parent) boots, in spec order:
	// lxc.start.auto, started by the lab user's systemd for containers of the VM and by LXC's
	// own service inside a parent.
	Autostart bool `yaml:"autostart"`
	// AppArmor is how the container is confined when it nests: generated (LXC's own profile
	// for nesting: lxc-container-default-with-nesting for an unprivileged container, which
	// cannot load a generated profile; the generated profile with allow_nesting for a
	// privileged one on LXC >= 3.1; containers nested inside keep its profile) or unconfined
	// (deliberately unconfined, with nesting.conf and cgroup:rw:force, for guests without
	// AppArmor userspace).
	AppArmor string `yaml:"apparmor"`
}

// Image is a container image source.
type Image struct {
	// Type is download, local, busybox or template.
	Type string `yaml:"type"`
	// Dist, Release, Arch: for download (and local: Release defaults to the guest's).
	Dist    string `yaml:"dist"`
	Release string `yaml:"release"`
	Arch    string `yaml:"arch"`
	// Template names an LXC template for type template (e.g. ubuntu-cloud).
	Template string `yaml:"template"`
}

// Default fills every field left empty with labctl's default.
func (s *Spec) Default() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&s.Provider, provider.Auto)
	defInt(&s.CPUs, 2)
	defInt(&s.Memory, 2048)
	def(&s.Accelerator, "auto")
	defInt(&s.BootTimeout, 300)
	def(&s.Libvirt, "auto")
	def(&s.Disk.Size, "20GiB")
	def(&s.Disk.Image, "disk1.vdi")
	def(&s.Disk.Bus, "sata")
	def(&s.Disk.Controller, "SATA Controller")
	defInt(&s.Disk.Port, 1)
	def(&s.Btrfs.MountPoint, "/mnt")
	if s.Btrfs.Options == nil {
		s.Btrfs.Options = []string{"defaults", "user_subvol_rm_allowed", "nofail", "x-systemd.device-timeout=90s"}
	}
	def(&s.Btrfs.FstabBy, "uuid")
	def(&s.User, "vagrant")
	defInt(&s.IDMap.Start, 100000)
	defInt(&s.IDMap.Count, 65536)
	def(&s.Network.Type, "veth")
	def(&s.Network.Link, "lxcbr0")
	defInt(&s.Network.MaxVeths, 10)
	def(&s.Network.HWAddr, "00:16:3e:xx:xx:xx")
	for i := range s.Containers {
		c := &s.Containers[i]
		def(&c.Backing, "btrfs")
		def(&c.AppArmor, "generated")
		if c.Image.Type == "download" {
			def(&c.Image.Arch, "amd64")
		}
	}
}

// Container returns the container named name, or nil.
func (s *Spec) Container(name string) *Container {
	for i := range s.Containers {
		if s.Containers[i].Name == name {
			return &s.Containers[i]
		}
	}
	return nil
}

// ProviderFor resolves provider auto (provider.For): the provider of labctl's own boxes when
// labctl builds the box, else the recipe's.
func (s *Spec) ProviderFor() string { return provider.For(s.Provider, s.Box.Release != "") }

// ProviderInfo is what labctl knows of the spec's provider (a zero Info, named, for one it
// does not support: Validate says so).
func (s *Spec) ProviderInfo() provider.Info {
	name := s.ProviderFor()
	if p, ok := provider.Get(name); ok {
		return p
	}
	return provider.Info{Name: name}
}

// BoxName is the Vagrant box name the Vagrantfile uses.
func (s *Spec) BoxName() string {
	if s.Box.Name != "" {
		return s.Box.Name
	}
	return "labctl/" + s.BoxFlavour()
}

// BoxFlavour names a box labctl builds: its release, or the kernel's suite when the kernel
// comes from the release's backports (bookworm-backports), or RELEASE-k-SUITE when it comes
// from another suite; -lxc-SUITE when LXC comes from another suite than the release's. Boxes,
// their caches and their volumes go by it.
func (s *Spec) BoxFlavour() string {
	f := s.Box.Release
	switch k := s.Box.Kernel; {
	case k == "" || k == s.Box.Release:
	case k == s.Box.Release+"-backports":
		f = k
	default:
		f += "-k-" + k
	}
	if l := s.LXC.Suite; l != "" && l != s.Box.Release && s.Box.Release != "" {
		f += "-lxc-" + l
	}
	if s.LXC.Source != "" {
		f += "-lxc-" + sourceName(s.LXC.Source, s.LXC.Ref)
	}
	if s.Box.Cgroup == "v1" {
		f += "-cgroup1"
	}
	return f
}

// Home is the lab user's home directory in the guest.
func (s *Spec) Home() string { return "/home/" + s.User }

// ContainerDir is where a container of the VM lives on the VM (lxcpath/NAME).
func (s *Spec) ContainerDir(name string) string { return path.Join(s.Btrfs.MountPoint, name) }

// NestedLXCPath is where containers nested in a container live, inside it: root's lxcpath.
const NestedLXCPath = "/var/lib/lxc"

// RootfsOnVM is a container's root filesystem as the VM sees it: under the mount point for a
// container of the VM, under its parent's root filesystem for a nested one (directory-backed,
// in root's lxcpath there).
func (s *Spec) RootfsOnVM(name string) string {
	c := s.Container(name)
	if c == nil || c.Parent == "" {
		return path.Join(s.ContainerDir(name), "rootfs")
	}
	return path.Join(s.RootfsOnVM(c.Parent), NestedLXCPath, name, "rootfs")
}

// Depth is how deep a container is nested: 1 for a container of the VM, 2 inside it, ...
func (s *Spec) Depth(name string) int {
	d := 0
	for c := s.Container(name); c != nil; c = s.Container(c.Parent) {
		d++
		if c.Parent == "" || d > len(s.Containers) {
			break
		}
	}
	return d
}

// Top is the container of the VM that holds a container (the container itself at depth 1).
func (s *Spec) Top(name string) *Container {
	c := s.Container(name)
	for i := 0; c != nil && c.Parent != "" && i < len(s.Containers); i++ {
		c = s.Container(c.Parent)
	}
	return c
}

// DomainPrefix prefixes the libvirt domain and volume names of the lab's VM.
func (s *Spec) DomainPrefix() string { return "labctl-" + s.Name + "_" }

// DomainName is the libvirt domain of the lab's VM (Vagrant's machine "default").
func (s *Spec) DomainName() string { return s.DomainPrefix() + "default" }

// Resolve finds the lab a command works on: the file (- for standard input), else the
// preset, else dir/lab.yaml, else the default preset. Giving both file and preset is an
// error. The CLI and the e2e suite both call it.
func Resolve(file, preset, dir string) (*Spec, error) {
	switch {
	case file != "" && preset != "":
		return nil, errors.New("give -f or --preset, not both")
	case file != "":
		return Load(file)
	case preset != "":
		return Preset(preset)
	}
	p := filepath.Join(dir, "lab.yaml")
	if _, err := os.Stat(p); err == nil {
		return Load(p)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read lab spec %s: %w", p, err)
	}
	return Preset(DefaultPreset)
}
