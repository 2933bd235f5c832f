package release

import (
	"fmt"
	"slices"
	"strings"
)

// Suite is an apt suite of the host's Debian mirror as a source of a box's kernel or LXC: what
// it serves there, and how a box of another release takes it.
type Suite struct {
	Name string
	// Release is the release whose sources line the suite is a variant of on the mirror.
	Release string
	// Base is the suite a backports suite builds on: apt takes what the backport needs
	// of it too (pinned below the backport).
	Base string
	// Kernel, LXC and Systemd are the versions the suite serves ("" when it serves none
	// labctl uses).
	Kernel, LXC, Systemd string
	// CgroupV1 is how the suite's systemd boots on cgroup v1: "" not at all (262 dropped it),
	// "yes" with systemd.unified_cgroup_hierarchy=0, "force" with
	// SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1 as well (257).
	CgroupV1 string
}

// CgroupV1KernelBelow is the first kernel that cannot run a cgroup-v1 lab: from 6.12 the
// kernels here lack the v1 memory and cpuset controllers.
const CgroupV1KernelBelow = "6.12"

// suites are the suites the host's mirror serves, oldest first (seen on the build machine's
// mirror, 2026-12-03: `apt-cache madison linux-image-amd64 lxc systemd`). A release's own
// suite takes its kernel and LXC from the release table (init).
var suites = []Suite{
	{Name: "bullseye", Release: "bullseye", Systemd: "247", CgroupV1: "yes"},
	{Name: "bookworm", Release: "bookworm", Systemd: "252", CgroupV1: "yes"},
	{Name: "bookworm-backports", Release: "bookworm", Base: "bookworm", Kernel: "6.12", Systemd: "254"},
	{Name: "trixie", Release: "trixie", Systemd: "257", CgroupV1: "force"},
	{Name: "trixie-backports", Release: "trixie", Base: "trixie", Kernel: "7.3"},
	{Name: "forky", Release: "forky", Systemd: "262"},
	{Name: "sid", Release: "sid", Kernel: "7.2", LXC: "7.0.0", Systemd: "262"},
	{Name: "experimental", Release: "experimental", Base: "sid", Kernel: "7.3"},
}

func init() {
	for i, s := range suites {
		if r, ok := Get(s.Name); ok {
			suites[i].Kernel, suites[i].LXC = r.Kernel, r.LXC
		}
	}
}

// Suites lists the suites, oldest first.
func Suites() []Suite { return slices.Clone(suites) }

// SuiteOf returns the suite called name.
func SuiteOf(name string) (Suite, error) {
	for _, s := range suites {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range suites {
		names = append(names, s.Name)
	}
	return Suite{}, fmt.Errorf("is not a suite of the host's mirror labctl knows: use one of %s", strings.Join(names, ", "))
}

// KernelSuite is the suite to take kernel version (major.minor) from: the first release that
// serves it, else the first other suite (a backports suite before experimental).
func KernelSuite(kernel string) (Suite, error) {
	return firstServing(kernel, func(s Suite) string { return s.Kernel }, "kernel")
}

// LXCSuite is the suite to take LXC version from.
func LXCSuite(lxc string) (Suite, error) {
	return firstServing(lxc, func(s Suite) string { return s.LXC }, "LXC")
}

func firstServing(v string, of func(Suite) string, what string) (Suite, error) {
	var found []Suite
	for _, s := range suites {
		if of(s) == v {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		var have []string
		for _, s := range suites {
			if of(s) != "" && !slices.Contains(have, of(s)) {
				have = append(have, of(s))
			}
		}
		return Suite{}, fmt.Errorf("no suite of the host's mirror serves %s %s: it serves %s", what, v, strings.Join(have, ", "))
	}
	for _, s := range found {
		if _, ok := Get(s.Name); ok {
			return s, nil
		}
	}
	return found[0], nil
}
