package render

import (
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
// returns the paths it wrote, relative to dir.
func (r *Rendering) WriteTo(dir string) ([]string, error) {
	var wrote []string
	write := func(rel string, data []byte) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
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
