package build

import (
	"fmt"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/golden"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/release"
)

// TestAptOfEveryPair renders, for every release labctl builds and every suite of the mirror
// as the kernel's (and as LXC's) source, what a build's apt gets: the sources lines it adds
// (from a stand-in for the host's), whether the kernel goes in late, and the pins. The
// golden file is the review: `go test ./lab/build -run AptOfEveryPair -update`.
func TestAptOfEveryPair(t *testing.T) {
	var b strings.Builder
	for _, rel := range release.Buildable() {
		hostLines := []string{"deb http://mirror.invalid/debian " + rel + " main"}
		for _, kind := range []string{"kernel", "lxc"} {
			for _, s := range append([]release.Suite{{}}, release.Suites()...) {
				su := Suites{Kernel: s.Name}
				if kind == "lxc" {
					if s.LXC == "" && s.Name != "" {
						continue
					}
					su = Suites{LXC: s.Name}
				}
				fmt.Fprintf(&b, "== userland %s, %s from %s\n", rel, kind, orOwn(s.Name))
				for _, extra := range su.Extra(rel) {
					for _, l := range host.SuiteLines(hostLines, rel, extra) {
						fmt.Fprintf(&b, "source  %s\n", l)
					}
				}
				if su.CrossKernel(rel) {
					b.WriteString("kernel  installed after the userland (KERNEL_LATE)\n")
				}
				if p := su.Pins(rel); p != "" {
					for _, l := range strings.Split(strings.TrimRight(p, "\n"), "\n") {
						fmt.Fprintf(&b, "pin     %s\n", l)
					}
				}
			}
		}
	}
	golden.Check(t, "apt-pairs.golden", []byte(b.String()))
}

func orOwn(s string) string {
	if s == "" {
		return "the release's own"
	}
	return s
}
