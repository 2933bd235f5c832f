package release

import (
	"strings"
	"testing"
)

func TestSuiteOfAVersion(t *testing.T) {
	for _, c := range []struct{ kernel, suite string }{
		{"5.10", "bullseye"}, {"6.1", "bookworm"}, {"6.12", "trixie"}, {"7.2", "forky"}, {"7.3", "trixie-backports"},
	} {
		s, err := KernelSuite(c.kernel)
		if err != nil || s.Name != c.suite {
			t.Errorf("KernelSuite(%s) = %q, %v; want %s", c.kernel, s.Name, err, c.suite)
		}
	}
	for _, c := range []struct{ lxc, suite string }{
		{"4.0.6", "bullseye"}, {"5.0.2", "bookworm"}, {"6.0.4", "trixie"}, {"7.0.0", "forky"},
	} {
		s, err := LXCSuite(c.lxc)
		if err != nil || s.Name != c.suite {
			t.Errorf("LXCSuite(%s) = %q, %v; want %s", c.lxc, s.Name, err, c.suite)
		}
	}
	if _, err := KernelSuite("4.19"); err == nil || !strings.Contains(err.Error(), "serves kernel 4.19: it serves 5.10, 6.1, 6.12, 7.3, 7.2") {
		t.Errorf("KernelSuite(4.19): %v", err)
	}
	if _, err := SuiteOf("buster"); err == nil || !strings.Contains(err.Error(), "use one of bullseye, bookworm") {
		t.Errorf("SuiteOf(buster): %v", err)
	}
}

func TestKernelOfAnySuite(t *testing.T) {
	forky, _ := Get("forky")
	for suite, want := range map[string]string{"": "7.2", "bullseye": "5.10", "bookworm-backports": "6.12", "experimental": "7.3"} {
		if got, err := forky.KernelOf(suite); err != nil || got != want {
			t.Errorf("forky.KernelOf(%q) = %s, %v; want %s", suite, got, err, want)
		}
	}
	if _, err := forky.KernelOf("bullseye-backports"); err == nil {
		t.Error("bullseye-backports: the mirror serves none, want an error")
	}
	b, _ := Get("bookworm")
	if b.Backports() != "6.12" || forky.Backports() != "" {
		t.Errorf("Backports: bookworm %q, forky %q", b.Backports(), forky.Backports())
	}
}
