package spec

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-version"
	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/release"
)

// validateContainers checks the containers, each against those listed before it.
func (s *Spec) validateContainers(bad badFunc, lxcVer *lxc.Version) {
	if len(s.Containers) == 0 {
		bad("containers", nil, "is empty: a lab needs at least one container (box1)")
	}
	seen := map[string]int{}
	for i, c := range s.Containers {
		s.validateContainer(bad, i, c, seen)
		s.validateImage(bad, i, c, lxcVer)
		s.validateNesting(bad, i, c)
	}
}

// imageLXC says how LXC gets into a container of each image type, for the containers that
// hold containers: labctl's own image carries it; a downloaded or templated distribution gets
// it from apt-get inside the container (the recipe's way: it needs the internet, which only a
// container of the VM reaches); a busybox rootfs has none.
var imageLXC = map[string]string{
	"local":    "carries LXC",
	"download": "gets LXC from apt-get inside it (the internet)",
	"template": "gets LXC from apt-get inside it (the internet)",
	"busybox":  "",
}

// MaxDepth is how deep containers may nest: each level is a PID namespace inside its parent's,
// and the kernel allows 32 below the VM's (MAX_PID_NS_LEVEL).
const MaxDepth = 32

// validateNesting refuses a container that nests, or holds containers, where that cannot
// work: its image has no LXC to run them with (busybox), or, nested itself, gets LXC only from
// the internet, which nested containers do not reach (they have no network); and a tree deeper
// than the kernel nests PID namespaces. A nested container is created by root inside its
// parent, so it is never unprivileged of its own: the field is refused rather than silently
// ignored.
func (s *Spec) validateNesting(bad badFunc, i int, c Container) {
	f := func(name string) string { return fmt.Sprintf("containers[%d].%s", i, name) }
	if d := s.Depth(c.Name); d > MaxDepth {
		bad(f("parent"), c.Parent, "puts %s %d levels below the VM: the kernel nests at most %d PID namespaces (one per container level); make the tree shallower", c.Name, d, MaxDepth)
	}
	if c.Parent != "" && c.Unprivileged {
		bad(f("unprivileged"), c.Unprivileged, "%s is nested in %s, where it is created by %s's root: it runs in %s's id map (unprivileged seen from the VM), never with one of its own; remove unprivileged (or set it false)", c.Name, c.Parent, c.Parent, c.Parent)
	}
	var children []string
	for _, k := range s.Containers {
		if k.Parent == c.Name && c.Name != "" {
			children = append(children, k.Name)
		}
	}
	if !c.Nesting && len(children) == 0 {
		return
	}
	holds := ""
	if len(children) > 0 {
		holds = fmt.Sprintf(" (it holds %s)", strings.Join(children, ", "))
	}
	kind, known := imageLXC[c.Image.Type]
	switch {
	case known && kind == "":
		bad(f("image.type"), c.Image.Type, "%s nests%s, but a %s image carries no LXC to run containers with: use image type local (labctl's own image, which carries LXC), or set nesting: false", c.Name, holds, c.Image.Type)
	case known && c.Parent != "" && c.Image.Type != "local":
		bad(f("image.type"), c.Image.Type, "%s is nested in %s and nests%s, but a %s image %s, and a nested container has no network: use image type local (labctl's own image, which carries LXC), or set nesting: false", c.Name, c.Parent, holds, c.Image.Type, kind)
	}
}

// validateContainer checks containers[i]: its name, parent, privilege, backing and
// confinement; seen are the containers before it.
func (s *Spec) validateContainer(bad badFunc, i int, c Container, seen map[string]int) {
	f := func(name string) string { return fmt.Sprintf("containers[%d].%s", i, name) }
	if !nameRE.MatchString(c.Name) {
		bad(f("name"), c.Name, "is not a valid container name: use lowercase letters, digits and '-', starting with a letter")
	} else if j, dup := seen[c.Name]; dup {
		bad(f("name"), c.Name, "is already used by containers[%d]", j)
	}
	seen[c.Name] = i
	if c.Parent != "" {
		j, ok := seen[c.Parent]
		switch {
		case !ok:
			bad(f("parent"), c.Parent, "is not a container listed before this one")
		case !s.Containers[j].Nesting:
			bad(f("parent"), c.Parent, "does not allow nesting: set containers[%d].nesting: true", j)
		}
	}
	if c.Parent == "" && !c.Unprivileged {
		bad(f("unprivileged"), c.Unprivileged, "must be true for a container of the VM: labctl builds unprivileged labs")
	}
	switch c.Backing {
	case "btrfs":
		if c.Parent != "" {
			bad(f("backing"), c.Backing, "is only supported for containers of the VM (the btrfs disk is the VM's); use dir")
		}
	case "dir":
	default:
		bad(f("backing"), c.Backing, "is not supported: use btrfs or dir")
	}
	switch c.AppArmor {
	case "generated", "unconfined":
	default:
		bad(f("apparmor"), c.AppArmor, "is not supported: use generated or unconfined")
	}
}

// validateImage checks where containers[i]'s rootfs comes from.
func (s *Spec) validateImage(bad badFunc, i int, c Container, lxcVer *lxc.Version) {
	f := func(name string) string { return fmt.Sprintf("containers[%d].%s", i, name) }
	im := c.Image
	switch im.Type {
	case "download":
		if !releaseRE.MatchString(im.Dist) {
			bad(f("image.dist"), im.Dist, "is not a distribution name (e.g. ubuntu)")
		}
		if !releaseRE.MatchString(im.Release) {
			bad(f("image.release"), im.Release, "is not a release name (e.g. trusty)")
		}
		if !archRE.MatchString(im.Arch) {
			bad(f("image.arch"), im.Arch, "is not an architecture (e.g. amd64)")
		}
	case "local":
		// A nested container's local image is its top container's, handed down from it.
		if top := s.Top(c.Name); c.Parent != "" && top != nil && top.Image.Type != "local" {
			bad(f("image.type"), im.Type, "needs %s's own image to be local: a nested container's local image is the one of the container of the VM that holds it (%s), handed down to it; use busybox, or make %s's image local", top.Name, top.Name, top.Name)
		}
		if s.Box.Release == "" {
			bad(f("image.type"), im.Type, "needs box.release: labctl builds local images for the Debian release of its own boxes")
		}
		if lxcVer != nil && !lxcVer.LocalImages() {
			bad(f("image.type"), im.Type, "needs LXC >= %s (lxc.version is %q): use download", lxc.LocalImagesSince, s.LXC.Version)
		}
	case "busybox":
	case "template":
		if !nameRE.MatchString(im.Template) {
			bad(f("image.template"), im.Template, "is not an LXC template name (e.g. ubuntu-cloud)")
		}
	default:
		bad(f("image.type"), im.Type, "is not supported: use download, local, busybox or template")
	}
}

// validateCgroup checks box.cgroup: v1 only on a box labctl builds whose release's systemd
// still boots on v1, with a kernel that still has v1's controllers.
func (s *Spec) validateCgroup(bad badFunc, lxcVer *lxc.Version) {
	switch s.Box.Cgroup {
	case "", "v2":
		if lxcVer != nil && lxcVer.Cgroup1Only() && s.Box.Release != "" {
			bad("lxc.version", s.LXC.Version, "runs on cgroup v1 only (LXC 1.x has no cgroup2 driver): set box.cgroup: v1 on a release whose systemd still boots on v1 (bullseye, bookworm)")
		}
		return
	case "v1":
	default:
		bad("box.cgroup", s.Box.Cgroup, "is not supported: use v2 (the default) or v1")
		return
	}
	if s.Box.Release == "" {
		bad("box.cgroup", s.Box.Cgroup, "needs box.release: labctl boots its own boxes on cgroup v1; drop it for box.name")
		return
	}
	su, err := release.SuiteOf(s.Box.Release)
	if err != nil || su.CgroupV1 == "" {
		bad("box.cgroup", s.Box.Cgroup, "cannot be v1 on %s: its systemd (%s) boots on the unified hierarchy only; use a release whose systemd still boots on v1 (bullseye, bookworm, trixie)", s.Box.Release, su.Systemd)
		return
	}
	if lxcVer != nil && lxcVer.Cgroup2Only() {
		bad("box.cgroup", s.Box.Cgroup, "cannot carry LXC %s: LXC from 7.0 mounts only the unified hierarchy into a container (\"Failed to mount cgroups - unsupported cgroup layout\" on a v1 host): use v2, or an LXC before 7.0", s.LXC.Version)
		return
	}
	r, _ := release.Get(s.Box.Release)
	kernel, err := r.KernelOf(s.Box.Kernel)
	if err != nil {
		return // box.kernel says so
	}
	k, err1 := version.NewVersion(kernel)
	below, err2 := version.NewVersion(release.CgroupV1KernelBelow)
	if err1 == nil && err2 == nil && !k.LessThan(below) {
		bad("box.cgroup", s.Box.Cgroup, "cannot be v1 with kernel %s: kernels from %s on lack the v1 memory and cpuset controllers; take an older kernel (box.kernel: bookworm, 6.1)", kernel, release.CgroupV1KernelBelow)
	}
}
