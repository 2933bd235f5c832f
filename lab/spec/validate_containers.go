package spec

import (
	"fmt"

	"github.com/labctl/labctl/lab/lxc"
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
		if c.Parent != "" {
			bad(f("image.type"), im.Type, "is only supported for containers of the VM; use busybox inside a container")
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
