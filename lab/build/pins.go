package build

import (
	"fmt"
	"slices"
	"strings"

	"github.com/labctl/labctl/lab/release"
)

// Suites is where a box's or an image's kernel and LXC come from when not from its release:
// the apt sources it needs beyond the release's own, and the pins (an apt preferences file)
// that take just those packages from there.
type Suites struct {
	// Kernel is the kernel's suite ("" or the release: the release's own).
	Kernel string
	// LXC is LXC's suite ("" or the release: the release's own).
	LXC string
}

// pin is one apt preferences stanza.
func pin(packages, suite string, priority int) string {
	return fmt.Sprintf("Package: %s\nPin: release n=%s\nPin-Priority: %d\n", packages, suite, priority)
}

// Extra are the suites a build of release needs sources for, beyond the release's own.
func (su Suites) Extra(rel string) []string {
	var out []string
	add := func(s string) {
		if s != "" && s != rel && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if su.Kernel != "" {
		if k, err := release.SuiteOf(su.Kernel); err == nil {
			add(k.Name)
			add(k.Base)
		}
	}
	add(su.LXC)
	return out
}

// CrossKernel says the kernel comes from another release than rel's (its own backports are
// not another): it is then installed after the userland, once its linux-base's hooks are where
// the userland's run-parts finds them.
func (su Suites) CrossKernel(rel string) bool {
	if su.Kernel == "" || su.Kernel == rel {
		return false
	}
	k, err := release.SuiteOf(su.Kernel)
	return err != nil || (k.Release != rel && k.Base != rel)
}

// Pins is the apt preferences file of a build of release ("" when it needs none).
//   - A kernel of the release's backports: the kernel and what it needs of the same suite
//     (initramfs-tools too), as Debian's backports are meant to be taken.
//   - A kernel of another release: the kernel's source packages from its suite (and its
//     base, a little lower), and the userland's own initramfs-tools (a newer one drags in a
//     newer libc).
//   - LXC of another suite: the source package lxc from there (lxc, liblxc1, liblxc-common);
//     the userland's lxc-templates.
func (su Suites) Pins(rel string) string {
	var b strings.Builder
	switch {
	case su.Kernel == "" || su.Kernel == rel:
	case !su.CrossKernel(rel):
		b.WriteString(pin("linux-image-* linux-base initramfs-tools initramfs-tools-core", su.Kernel, 990))
	default:
		k, _ := release.SuiteOf(su.Kernel)
		b.WriteString(pin("src:linux src:linux-signed-amd64 src:linux-base", k.Name, 990))
		if k.Base != "" {
			b.WriteString("\n" + pin("src:linux src:linux-signed-amd64 src:linux-base", k.Base, 980))
		}
		b.WriteString("\n" + pin("initramfs-tools initramfs-tools-core", rel, 1001))
	}
	if su.LXC != "" && su.LXC != rel {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(pin("src:lxc", su.LXC, 990))
	}
	return b.String()
}
