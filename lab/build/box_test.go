package build

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/spec"
)

func boxRecipe(t *testing.T, s *spec.Spec) BoxRecipe {
	t.Helper()
	r, err := BoxRecipeFor(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBoxKeyFollowsRecipe(t *testing.T) {
	a := boxRecipe(t, mustPreset(t, "bookworm"))
	s := mustPreset(t, "bookworm")
	s.User = "lab"
	b := boxRecipe(t, s)
	if a.Key() == b.Key() || a.Key() != boxRecipe(t, mustPreset(t, "bookworm")).Key() {
		t.Fatal("the box key must change with the recipe and only with it")
	}
	if filepath.Base(a.File()) != "labctl.box" {
		t.Fatal(a.File())
	}
	// The key of today's bookworm box: a change here rebuilds every user's box, so it must be
	// deliberate (update this line with the recipe or the script).
	if a.Key() != "6b0cb51e148f" {
		t.Errorf("the bookworm box key is %s: the recipe or build-box.sh changed", a.Key())
	}
}

func TestBoxRecipeNeedsABuildableRelease(t *testing.T) {
	s := mustPreset(t, "trusty")
	if _, err := BoxRecipeFor(s); err == nil {
		t.Fatal("trusty boots an existing box: there is no recipe to build")
	}
}

func mustPreset(t *testing.T, name string) *spec.Spec {
	t.Helper()
	s, err := spec.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBackportsKernelIsABoxOfItsOwn(t *testing.T) {
	own := boxRecipe(t, mustPreset(t, "bookworm"))
	s := mustPreset(t, "bookworm")
	s.Box.Kernel = "bookworm-backports"
	bpo := boxRecipe(t, s)
	if bpo.Key() == own.Key() || bpo.Name() != "labctl/bookworm-backports" || bpo.Dir() == own.Dir() {
		t.Fatalf("a backports kernel must make another box: %s %s %s vs %s %s", bpo.Name(), bpo.Key(), bpo.Dir(), own.Key(), own.Dir())
	}
	if s.BoxName() != bpo.Name() {
		t.Fatalf("the Vagrantfile boots %s, the build adds %s", s.BoxName(), bpo.Name())
	}
	s.Box.Kernel = "bookworm-proposed"
	if _, err := BoxRecipeFor(s); err == nil || !strings.Contains(err.Error(), "bookworm-backports") {
		t.Fatalf("an unknown kernel suite: %v", err)
	}
}
