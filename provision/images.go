package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// image puts the container's local image into the guest: the one uploaded ahead (while the
// steps before ran) when it is the image of the spec's files now, else uploaded now. It returns
// the remote directory and the image.
func (p *Provisioner) image(ctx context.Context, c *spec.Container) (string, build.LocalImage, error) {
	g, err := p.render(ctx)
	if err != nil {
		return "", build.LocalImage{}, err
	}
	inside := insideFiles(g, c.Name)
	if a := p.uploads[c.Name]; a != nil {
		select {
		case <-a.done:
		case <-ctx.Done():
			return "", build.LocalImage{}, ctx.Err()
		}
		if a.err == nil && sameFiles(a.inside, inside) {
			fmt.Fprintf(p.Opts.Out, "  %s's image was uploaded while the steps before ran\n", c.Name)
			return a.dir, a.img, nil
		}
		fmt.Fprintf(p.Opts.Log, "# %s's image uploaded ahead is not used (%v): uploading it now\n", c.Name, a.err)
	}
	return p.uploadImage(ctx, c, inside)
}

// sameFiles reports whether two renderings of a container's inside files (in any order) are
// the same, and so are their images.
func sameFiles(a, b []render.GuestFile) bool {
	if len(a) != len(b) {
		return false
	}
	byPath := map[string]render.GuestFile{}
	for _, f := range a {
		byPath[f.Path] = f
	}
	for _, f := range b {
		o, ok := byPath[f.Path]
		if !ok || o.Mode != f.Mode || o.Owner != f.Owner || !bytes.Equal(o.Content, f.Content) {
			return false
		}
	}
	return true
}

func insideFiles(g []render.GuestFile, container string) []render.GuestFile {
	var inside []render.GuestFile
	for _, f := range g {
		if f.Target == container {
			inside = append(inside, f)
		}
	}
	return inside
}

// upload is a container's image being uploaded ahead, done when done is closed.
type upload struct {
	done   chan struct{}
	inside []render.GuestFile // the files the image was built with
	dir    string
	img    build.LocalImage
	err    error
}

// uploadAhead uploads, beside the steps, the image of each container of the VM that has a
// local image and does not exist yet (a cold provision: seconds of SCP and sha256 under
// emulation, otherwise spent in the create step); the create step takes it (image). The
// image's files are those laid out (Provisioner.layout): without the data disk's UUID, which
// is not formatted yet and which no file inside a container holds (image compares them with
// the files rendered then). It returns a function that cancels what still runs and waits for
// it.
func (p *Provisioner) uploadAhead(ctx context.Context, files []render.GuestFile) func() {
	if p.Opts.Ahead <= 0 || p.Comm == nil || p.Opts.Image == nil || p.Opts.Plan {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	p.uploads = map[string]*upload{}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		if c.Parent != "" || c.Image.Type != "local" {
			continue
		}
		inside := insideFiles(files, c.Name)
		u := &upload{done: make(chan struct{}), inside: inside}
		p.uploads[c.Name] = u
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(u.done)
			if st, err := p.lxcState(ctx, c); err != nil || st != "" {
				u.err = fmt.Errorf("%s exists (%q) or its state is unknown (%v)", c.Name, st, err)
				return
			}
			u.dir, u.img, u.err = p.uploadImage(ctx, c, inside)
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// uploadImage gets the container's local image for its inside files from Options.Image (built
// on the host, or cached) and uploads it into the lab user's cache in the guest, verified by
// size and sha256, with labctl's LXC template beside it. It returns the remote directory and
// the image.
func (p *Provisioner) uploadImage(ctx context.Context, c *spec.Container, inside []render.GuestFile) (string, build.LocalImage, error) {
	var img build.LocalImage
	if p.Comm == nil {
		return "", img, errors.New("no SSH connection to upload the image over")
	}
	if p.Opts.Image == nil {
		return "", img, fmt.Errorf("container %s has a local image, but no image source was given to the provisioner", c.Name)
	}
	img, err := p.Opts.Image(ctx, inside)
	if err != nil {
		return "", img, err
	}
	dir := path.Join(p.Spec.Home(), ".cache/labctl/images", img.Key)
	tmpl := path.Join(dir, lxc.ImageTemplateName)
	if _, err := remote.Must(ctx, p.VM, remote.Cmd{Line: remote.Shf("mkdir -p %s && cat > %s.new && chmod 755 %s.new && mv -f %s.new %s", dir, tmpl, tmpl, tmpl, tmpl),
		Stdin: strings.NewReader(lxc.ImageTemplate)}); err != nil {
		return "", img, err
	}
	for _, f := range []string{img.Meta, img.Rootfs} {
		dest := path.Join(dir, path.Base(f))
		res, err := p.Comm.UploadFile(ctx, f, dest, 0o644, p.Opts.Out)
		if err != nil {
			return "", img, err
		}
		fmt.Fprintf(p.Opts.Out, "  upload %s: %d MB in %s, sha256 verified\n", path.Base(f), res.Bytes>>20, res.Duration.Round(100*time.Millisecond))
	}
	return dir, img, nil
}
