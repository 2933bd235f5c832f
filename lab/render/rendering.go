package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/spec"
)

// Render renders the Vagrantfile and the guest files of a spec.
func Render(s *spec.Spec, vin VagrantInputs, gin GuestInputs) (*Rendering, error) {
	vf, err := Vagrantfile(s, vin)
	if err != nil {
		return nil, err
	}
	g, err := Guest(s, gin)
	if err != nil {
		return nil, err
	}
	return &Rendering{Vagrantfile: vf, Guest: g}, nil
}

// Rendering is everything `labctl render` writes: the Vagrantfile and the guest files.
type Rendering struct {
	Vagrantfile []byte
	Guest       []GuestFile
}

// WriteTo writes the rendering under dir: dir/Vagrantfile, every whole guest file at
// dir/guest/<guest path>, every set of ensured lines at dir/guest/<guest path>.lines. It
// returns the paths it wrote, relative to dir. It never writes through a symlink under dir
// (one planted there could point anywhere): a symlinked directory is refused, a symlinked
// file replaced (each file is written to a new file beside it, then renamed over it).
func (r *Rendering) WriteTo(dir string) ([]string, error) {
	var wrote []string
	write := func(rel string, data []byte) error {
		if err := writeUnder(dir, rel, data); err != nil {
			return err
		}
		wrote = append(wrote, rel)
		return nil
	}
	if r.Vagrantfile != nil {
		if err := write(labdir.Vagrantfile, r.Vagrantfile); err != nil {
			return wrote, err
		}
	}
	for _, f := range r.Guest {
		rel := filepath.Join(labdir.Guest, f.GuestPath())
		data := f.Content
		if f.IsLines() {
			rel += ".lines"
			data = []byte(strings.Join(f.Lines, "\n") + "\n")
		}
		if err := write(rel, data); err != nil {
			return wrote, err
		}
	}
	return wrote, nil
}

// writeUnder writes dir/rel, making its directories under dir, none of them a symlink.
func writeUnder(dir, rel string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { // the output directory: the caller's choice
		return err
	}
	parts := strings.Split(filepath.Dir(filepath.Clean(rel)), string(filepath.Separator))
	p := dir
	for _, part := range parts {
		if part == "." || part == "" {
			continue
		}
		if part == ".." {
			return fmt.Errorf("render: %s leaves %s", rel, dir)
		}
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case st.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink: labctl does not write through it (it could point anywhere); remove it", p)
		case !st.IsDir():
			return fmt.Errorf("%s is not a directory: remove it", p)
		}
	}
	tmp, err := os.CreateTemp(p, ".render-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, rel))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
