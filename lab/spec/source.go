package spec

import (
	"fmt"
	"path/filepath"

	"github.com/labctl/labctl/lab/labdir"
)

// Source names a lab the way every labctl command does: File (- for standard input), else
// Preset, else Root/lab.yaml, else the default preset; Libvirt, when set, overrides lab.yaml's
// libvirt setting (--libvirt). The CLI, the lab's agent, e2e/labtest and the matrix all name
// labs this one way, and Args turns it back into labctl's flags.
type Source struct {
	File, Preset string
	// Libvirt overrides the spec's libvirt setting ("" keeps it).
	Libvirt string
	// Root is the directory of lab.yaml and of the labs' tmp/ ("" is ".").
	Root string
	// StateDir, when set, holds the labs' directories instead of Root/tmp (--state-dir).
	StateDir string
}

// Labs is the directory that holds the labs' directories: StateDir, else Root/tmp.
func (s Source) Labs() string {
	if s.StateDir != "" {
		return s.StateDir
	}
	return filepath.Join(s.Dir(), labdir.Tmp)
}

// Dir is Root, "." when unset.
func (s Source) Dir() string {
	if s.Root == "" {
		return "."
	}
	return s.Root
}

// Resolve returns the spec the source names (Resolve), with Libvirt in place of its libvirt
// setting.
func (s Source) Resolve() (*Spec, error) {
	sp, err := Resolve(s.File, s.Preset, s.Dir())
	if err != nil || s.Libvirt == "" {
		return sp, err
	}
	sp.Libvirt = s.Libvirt
	if err := sp.Validate(); err != nil {
		return nil, fmt.Errorf("--libvirt %s: %w", s.Libvirt, err)
	}
	return sp, nil
}

// Args are labctl's global flags that name the same lab (run in Root).
func (s Source) Args() []string {
	var args []string
	switch {
	case s.File != "":
		args = append(args, "-f", s.File)
	case s.Preset != "":
		args = append(args, "--preset", s.Preset)
	}
	if s.Libvirt != "" {
		args = append(args, "--libvirt", s.Libvirt)
	}
	if s.StateDir != "" {
		args = append(args, "--state-dir", s.StateDir)
	}
	return args
}
