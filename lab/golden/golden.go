// Package golden is the review of everything labctl renders: a test compares what it made
// with a file under its package's testdata/, and `go test ./PKG -update` rewrites the file, so
// that the diff of a change shows what changed. It is a test helper: only tests import it.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Updating says whether the test runs with -update.
func Updating() bool { return *update }

// Check compares got with testdata/name (a path below testdata/), or writes it with -update.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run `go test` on this package with -update to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s\nif the change is intended, run `go test` on this package with -update", p, diff)
	}
}
