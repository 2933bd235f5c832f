package build

import (
	"path/filepath"
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
	if a.Key() != "e173c90b92ad" {
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
