package build

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/release"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

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
	golden(t, "apt-pairs.golden", b.String())
}

func orOwn(s string) string {
	if s == "" {
		return "the release's own"
	}
	return s
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./lab/build -update creates it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s changed (-golden +now):\n%s\nif that is intended: go test ./lab/build -update", name, diff)
	}
}
