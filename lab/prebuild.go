package lab

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
)

// prebuild builds a new VM's container images beside the box and the boot, so that provisioning
// finds them cached (or waits for the build, under the image's lock) instead of building them
// while the booted VM waits: ~1 minute each under TCG.
type prebuild struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startImages starts building the images of the spec's containers, for the spec's LXC version
// (a guest whose LXC differs is given images of its own by provisioning). Output goes to out,
// the builds' to tmp/<lab>/logs/images.log.
func (u *upRun) startImages(ctx context.Context) {
	s := u.lab.Spec
	if s.Box.Release == "" || s.LXC.Version == "" {
		return
	}
	_, images, err := specImages(s)
	if err != nil {
		return
	}
	var recipes []build.ImageRecipe
	for _, im := range images {
		if !build.ImageCached(im.recipe) {
			recipes = append(recipes, im.recipe)
		}
	}
	if len(recipes) == 0 {
		return
	}
	log, err := u.lab.OpenLog(labdir.ImagesLog)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.images = &prebuild{cancel: cancel}
	u.images.wg.Add(1)
	fmt.Fprintf(u.out, "images: building %d beside the box and the boot (log %s)\n", len(recipes), u.lab.Log(labdir.ImagesLog))
	go func() {
		defer u.images.wg.Done()
		defer log.Close()
		for _, r := range recipes {
			if _, err := build.BuildImage(ctx, r, prefixed{u.out, "images: "}, log); err != nil {
				fmt.Fprintf(u.out, "images: %v (provisioning builds it)\n", err)
				return
			}
		}
	}()
}

// specImage is the recipe of a container's local image.
type specImage struct {
	container string
	recipe    build.ImageRecipe
}

// specImages renders the guest files of spec s for its LXC version, and the recipes of its
// containers' local images (in spec order) from the files rendered for their inside.
func specImages(s *spec.Spec) ([]render.GuestFile, []specImage, error) {
	files, err := render.Guest(s, render.GuestInputs{LXCVersion: s.LXC.Version})
	if err != nil {
		return nil, nil, fmt.Errorf("render the guest files: %w", err)
	}
	var images []specImage
	for _, c := range s.Containers {
		if c.Image.Type != "local" {
			continue
		}
		var inside []render.GuestFile
		for _, f := range files {
			if f.Target == c.Name {
				inside = append(inside, f)
			}
		}
		r, err := build.ImageRecipeFor(s, inside)
		if err != nil {
			return nil, nil, err
		}
		images = append(images, specImage{c.Name, r})
	}
	return files, images, nil
}

// stopImages ends a build still running (up failed or was interrupted) and waits for it.
func (u *upRun) stopImages() {
	if u.images != nil {
		u.images.cancel()
		u.images.wg.Wait()
	}
}

// waitImages waits for the builds (provisioning would wait under their locks anyway).
func (u *upRun) waitImages() {
	if u.images != nil {
		u.images.wg.Wait()
	}
}

// prefixed writes each write to w with a prefix (the builds' progress lines, told apart from
// up's own).
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}
