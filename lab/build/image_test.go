package build

import (
	"testing"

	"github.com/labctl/labctl/lab/render"
)

// TestImageKeyOfBookworm: box1's image for the bookworm lab keeps its cache key while its
// recipe (packages, the files rendered for its inside, metadata, script) is unchanged.
func TestImageKeyOfBookworm(t *testing.T) {
	s := mustPreset(t, "bookworm")
	files, err := render.Guest(s, render.GuestInputs{LXCVersion: "5.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	var inside []render.GuestFile
	for _, f := range files {
		if f.Target == "box1" {
			inside = append(inside, f)
		}
	}
	r0, err := ImageRecipeFor(s, inside)
	if err != nil || len(r0.Overlay) != 3 {
		t.Fatalf("box1's image has %d files rendered for its inside, want 3 (%v)", len(r0.Overlay), err)
	}
	r, err := ImageRecipeFor(s, inside)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key() != "4440961c8423" {
		t.Errorf("the bookworm image key is %s: the recipe, the overlay or build-image.sh changed (update this line if meant)", r.Key())
	}
}
