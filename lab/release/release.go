// Package release is labctl's one table of the distribution releases a lab can run: the
// kernel and LXC each ships, the kernel its backports suite serves, what lxc-net needs for its
// NAT, the btrfs tools' and the DHCP client's package names, and whether labctl can build a
// box for it from the host's Debian mirror. Adding a release
// is a row here (plus, for a preset, its lab.yaml and golden file).
package release

import (
	"fmt"
	"strings"
)

// Release is one distribution release.
type Release struct {
	// Name is the codename (bookworm, trusty, ...).
	Name string
	// Distro is debian or ubuntu.
	Distro string
	// Kernel and LXC are the versions the release ships (its own suite, no backports).
	Kernel, LXC string
	// Firewall is the package lxc-net needs for its NAT rules.
	Firewall string
	// BtrfsPackage is the package of mkfs.btrfs.
	BtrfsPackage string
	// DHCPClient is the package ifupdown's dhcp method runs inside labctl's container images
	// (it tries dhclient, then udhcpc, ...): isc-dhcp-client is gone from forky on.
	DHCPClient string
	// Buildable: labctl builds a libvirt box and container images for it with mmdebstrap from
	// the host's Debian mirror.
	Buildable bool
}

// table holds every release labctl knows, oldest first.
var table = []Release{
	{Name: "trusty", Distro: "ubuntu", Kernel: "3.13", LXC: "1.0.10", Firewall: "iptables", BtrfsPackage: "btrfs-tools", DHCPClient: "isc-dhcp-client"},
	{Name: "xenial", Distro: "ubuntu", Kernel: "4.4", LXC: "2.0.11", Firewall: "iptables", BtrfsPackage: "btrfs-tools", DHCPClient: "isc-dhcp-client"},
	{Name: "bionic", Distro: "ubuntu", Kernel: "4.15", LXC: "3.0.3", Firewall: "iptables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client"},
	{Name: "focal", Distro: "ubuntu", Kernel: "5.4", LXC: "4.0.12", Firewall: "iptables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client"},
	{Name: "bullseye", Distro: "debian", Kernel: "5.10", LXC: "4.0.6", Firewall: "iptables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client", Buildable: true},
	{Name: "jammy", Distro: "ubuntu", Kernel: "5.15", LXC: "5.0.0", Firewall: "iptables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client"},
	{Name: "bookworm", Distro: "debian", Kernel: "6.1", LXC: "5.0.2", Firewall: "nftables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client", Buildable: true},
	{Name: "noble", Distro: "ubuntu", Kernel: "6.8", LXC: "5.0.3", Firewall: "iptables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client"},
	{Name: "trixie", Distro: "debian", Kernel: "6.12", LXC: "6.0.4", Firewall: "nftables", BtrfsPackage: "btrfs-progs", DHCPClient: "isc-dhcp-client", Buildable: true},
	{Name: "forky", Distro: "debian", Kernel: "7.2", LXC: "7.0.0", Firewall: "nftables", BtrfsPackage: "btrfs-progs", DHCPClient: "udhcpc", Buildable: true},
}

// Get returns the release of that codename.
func Get(name string) (Release, bool) {
	for _, r := range table {
		if r.Name == name {
			return r, true
		}
	}
	return Release{}, false
}

// All lists every release labctl knows, oldest first.
func All() []Release { return append([]Release(nil), table...) }

// Buildable lists the releases labctl builds boxes for, oldest first.
func Buildable() []string {
	var out []string
	for _, r := range table {
		if r.Buildable {
			out = append(out, r.Name)
		}
	}
	return out
}

// Lookup returns a buildable release, or an error that lists the ones there are.
func Lookup(name string) (Release, error) {
	r, ok := Get(name)
	if !ok || !r.Buildable {
		return Release{}, fmt.Errorf("release %q is not one labctl can build: use one of %s", name, strings.Join(Buildable(), ", "))
	}
	return r, nil
}

// BtrfsPackage is the btrfs tools' package name on a guest of that codename (btrfs-progs
// unless the table says otherwise).
func BtrfsPackage(codename string) string {
	if r, ok := Get(codename); ok {
		return r.BtrfsPackage
	}
	return "btrfs-progs"
}

// BackportsSuite is the suite a box of this release takes a newer kernel from.
func (r Release) BackportsSuite() string { return r.Name + "-backports" }

// Backports is the kernel the release's backports suite serves ("" when the mirror serves
// none).
func (r Release) Backports() string {
	if s, err := SuiteOf(r.BackportsSuite()); err == nil {
		return s.Kernel
	}
	return ""
}

// KernelOf is the kernel a box of this release boots when it takes its kernel from suite ("":
// the release's own; any suite of the mirror: its kernel, installed into this release's
// userland), or an error that names the suites there are.
func (r Release) KernelOf(suite string) (string, error) {
	if suite == "" {
		return r.Kernel, nil
	}
	s, err := SuiteOf(suite)
	if err != nil {
		return "", err
	}
	if s.Kernel == "" {
		return "", fmt.Errorf("%s serves no kernel labctl knows", suite)
	}
	return s.Kernel, nil
}
