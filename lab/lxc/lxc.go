// Package lxc is labctl's one table of what each LXC version needs and can do: its
// configuration keys, how it lets a container nest, whether it creates containers from local
// images, the quirks of its templates, and the commands that read a container's state; and
// labctl's own image template with the metadata it reads (template.go). Every other package
// asks this one; adding an LXC version is a row in versions (plus its golden
// file in lab/render/testdata/dialects).
package lxc

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-version"
)

// Nesting is how a version lets a container run containers of its own.
type Nesting int

// The nesting methods, oldest first.
const (
	// NestingCgroupProfile: `lxc.mount.auto = cgroup` and the with-nesting AppArmor profile (1.x).
	NestingCgroupProfile Nesting = iota
	// NestingConf: `lxc.include = .../nesting.conf` (2.0 to 3.0).
	NestingConf
	// NestingGenerated: the profile LXC generates, with `lxc.apparmor.allow_nesting = 1` (3.1+).
	NestingGenerated
)

// row is what one range of LXC versions does; it holds from since to the next row's since.
type row struct {
	since string
	// name says in words which dialect this is (it heads every rendered file).
	name string
	// legacyKeys: the keys LXC 2.1 renamed (and 3.0 removed): lxc.id_map, lxc.network.*, ...
	legacyKeys bool
	nesting    Nesting
	// localImages: `lxc-create -t local -- --metadata M --fstree F` exists (3.0+).
	localImages bool
	// busyboxMknod: the busybox template mknods /dev entries, which a user namespace forbids.
	busyboxMknod bool
	// cgroup2Only: the version runs on the unified cgroup hierarchy only (7.0 dropped cgroup v1,
	// and kernels without pidfd or the new mount API).
	cgroup2Only bool
	// cgroup1Only: the version knows the v1 hierarchies only (1.x: its cgfs and cgmanager
	// drivers have no word of cgroup2).
	cgroup1Only bool
}

// versions is the table, oldest first.
var versions = []row{
	{since: "1.0", name: "LXC 1.x: legacy keys, nesting by cgroup mount + with-nesting profile", legacyKeys: true, nesting: NestingCgroupProfile, busyboxMknod: true, cgroup1Only: true},
	{since: "2.0", name: "LXC 2.0: legacy keys, nesting by nesting.conf", legacyKeys: true, nesting: NestingConf, busyboxMknod: true},
	{since: "2.1", name: "LXC 2.1-3.0: new keys, nesting by nesting.conf", nesting: NestingConf, busyboxMknod: true},
	{since: "3.0", name: "LXC 2.1-3.0: new keys, nesting by nesting.conf", nesting: NestingConf, localImages: true, busyboxMknod: true},
	{since: "3.1", name: "LXC >= 3.1: new keys, nesting by nesting.conf (unprivileged) or the generated profile with allow_nesting (privileged)", nesting: NestingGenerated, localImages: true, busyboxMknod: true},
	{since: "5.0", name: "LXC >= 3.1: new keys, nesting by nesting.conf (unprivileged) or the generated profile with allow_nesting (privileged)", nesting: NestingGenerated, localImages: true},
	{since: "7.0", name: "LXC >= 7.0: new keys, nesting by nesting.conf (unprivileged) or the generated profile with allow_nesting (privileged), cgroup v2 only", nesting: NestingGenerated, localImages: true, cgroup2Only: true},
}

// Dialects lists the LXC versions from which labctl's table changes what it writes or does,
// each with its dialect's name, oldest first.
func Dialects() [][2]string {
	var out [][2]string
	for _, r := range versions {
		out = append(out, [2]string{r.since, r.name})
	}
	return out
}

// Version is one LXC version and what it can do. Versions compare on their core: a
// Debian/Ubuntu suffix ("1.1.5-0ubuntu3") parses as a pre-release, and pre-releases never
// satisfy constraints.
type Version struct {
	*version.Version
	row row
}

// Parse reads an LXC version such as "5.0.2" or "1.1.5-0ubuntu3~ubuntu14.04.1".
func Parse(v string) (Version, error) {
	ver, err := version.NewVersion(v)
	if err != nil {
		return Version{}, fmt.Errorf("LXC version %q is not a version: %w", v, err)
	}
	core := ver.Core()
	first := version.Must(version.NewVersion(versions[0].since))
	if core.LessThan(first) {
		return Version{}, fmt.Errorf("LXC version %q is older than %s, the oldest labctl knows", v, versions[0].since)
	}
	out := Version{Version: core}
	for _, r := range versions {
		if !core.LessThan(version.Must(version.NewVersion(r.since))) {
			out.row = r
		}
	}
	return out, nil
}

// Name says which dialect this is, for comments and reports.
func (v Version) Name() string { return v.row.name }

// Legacy reports whether the version uses the keys LXC 2.1 renamed (and 3.0 removed).
func (v Version) Legacy() bool { return v.row.legacyKeys }

// Nesting is how the version lets a container nest.
func (v Version) Nesting() Nesting { return v.row.nesting }

// LocalImages reports whether `lxc-create -t local` exists (LXC >= 3.0).
func (v Version) LocalImages() bool { return v.row.localImages }

// LocalImagesSince is the first version with local images, for error messages.
const LocalImagesSince = "3.0"

// BusyboxMknod reports whether the busybox template creates /dev nodes with mknod, which a
// user namespace forbids (LXC < 5.0; LXC's autodev creates them at start anyway).
func (v Version) BusyboxMknod() bool { return v.row.busyboxMknod }

// Cgroup2Only reports whether the version runs only on the unified cgroup hierarchy (7.0+).
func (v Version) Cgroup2Only() bool { return v.row.cgroup2Only }

// Cgroup1Only reports whether the version runs only on the v1 cgroup hierarchies (1.x).
func (v Version) Cgroup1Only() bool { return v.row.cgroup1Only }

// Key spells a configuration key in this version's dialect, given its modern (>= 2.1) name.
func (v Version) Key(modern string) string {
	if !v.Legacy() {
		return modern
	}
	if rest, ok := strings.CutPrefix(modern, "lxc.net.0."); ok {
		return "lxc.network." + rest
	}
	if old, ok := legacyKeys[modern]; ok {
		return old
	}
	return modern
}

var legacyKeys = map[string]string{
	"lxc.idmap":            "lxc.id_map",
	"lxc.apparmor.profile": "lxc.aa_profile",
	"lxc.rootfs.path":      "lxc.rootfs",
	"lxc.uts.name":         "lxc.utsname",
	"lxc.log.file":         "lxc.logfile",
	"lxc.log.level":        "lxc.loglevel",
	"lxc.tty.max":          "lxc.tty",
	"lxc.pty.max":          "lxc.pts",
	"lxc.mount.fstab":      "lxc.mount",
	"lxc.seccomp.profile":  "lxc.seccomp",
	"lxc.signal.halt":      "lxc.haltsignal",
}

// NestedProfile is what a container's nested containers get as lxc.apparmor.profile when
// the container itself is confined: "unchanged", so that they keep its profile. Inside an
// unprivileged container LXC cannot change or stack profiles ("Already AppArmor confined,
// but new label requested"; without a label, "LSM wasn't prepared").
const NestedProfile = "unchanged"

// Set is one configuration line, `key = value`, in this dialect.
func (v Version) Set(key, value string) string { return v.Key(key) + " = " + value }

// nestingInclude is the include that gives a container the mounts a nested container needs.
const nestingInclude = "lxc.include = /usr/share/lxc/config/nesting.conf"

// NestingLines are the lines appended to a container's config to let it run containers,
// confined by AppArmor (apparmor "generated") or deliberately unconfined ("unconfined", for
// guests without AppArmor userspace). An unprivileged container is confined by the profile
// the guest's AppArmor already has for nesting (lxc-container-default-with-nesting, which
// nesting.conf names): LXC needs mac_admin in the host's user namespace to load the profile it
// generates, which an unprivileged user has not ("Per-container AppArmor profiles are disabled
// because the mac_admin capability is missing", then "Cannot use generated profile").
func (v Version) NestingLines(apparmor string, unprivileged bool) []string {
	unconfined := apparmor == "unconfined"
	switch {
	case unprivileged && !unconfined && v.Nesting() != NestingCgroupProfile:
		return []string{nestingInclude}
	case v.Nesting() == NestingCgroupProfile:
		profile := "lxc-container-default-with-nesting"
		if unconfined {
			profile = "unconfined"
		}
		return []string{"lxc.mount.auto = cgroup", v.Set("lxc.apparmor.profile", profile)}
	case unconfined:
		// No AppArmor userspace in the guest: nesting.conf's mounts, deliberately unconfined,
		// and a writable cgroup tree for the nested container.
		return []string{nestingInclude, v.Set("lxc.apparmor.profile", "unconfined"), "lxc.mount.auto = cgroup:rw:force"}
	case v.Nesting() == NestingConf:
		return []string{nestingInclude}
	default:
		return []string{v.Set("lxc.apparmor.profile", "generated"), "lxc.apparmor.allow_nesting = 1"}
	}
}

// nestingMounts are the mounts of LXC's nesting.conf (the same from 4.0 to 7.0), without the
// AppArmor profile it also sets.
var nestingMounts = []string{
	"lxc.mount.entry = proc dev/.lxc/proc proc create=dir,optional 0 0",
	"lxc.mount.entry = sys dev/.lxc/sys sysfs create=dir,optional 0 0",
}

// NestingLinesInside are NestingLines for a container nested in another one, where a
// container of the VM that is unprivileged holds them all: the mounts nesting.conf gives for
// its own containers, and its parent's AppArmor profile kept (LXC cannot change or stack
// profiles there: NestedProfile), or deliberately unconfined with a writable cgroup tree. Not
// nesting.conf itself: its profile line would win over the kept one wherever it stands after it
// (the config's lines are ensured, not ordered; seen: "LSM wasn't prepared", the start aborted).
func (v Version) NestingLinesInside(apparmor string) []string {
	lines := append([]string{}, nestingMounts...)
	if apparmor == "unconfined" {
		return append(lines, v.Set("lxc.apparmor.profile", "unconfined"), "lxc.mount.auto = cgroup:rw:force")
	}
	return append(lines, v.Set("lxc.apparmor.profile", NestedProfile))
}

// StateCommand is a shell line that prints a container's state (RUNNING, STOPPED, ...) and
// exits non-zero when the container does not exist. `lxc-info -H` (no humanising) is not in
// every version: older ones print "State: RUNNING", which the fallback reads.
func StateCommand(quotedName string) string {
	return fmt.Sprintf("lxc-info -n %s -s -H 2>/dev/null || lxc-info -n %s -s 2>/dev/null | awk '{print $2}'", quotedName, quotedName)
}
