// Package matrix is labctl's kernel/LXC matrix: cells (a preset plus lab.yaml overrides),
// what each needs of the host and whether this one has it, running cells as labs of their own
// (up, the e2e suite, destroy) through a Runner, and the reports: a result per cell, one
// merged JUnit file, a summary in Markdown and HTML, and the plan a CI job matrix fans out.
package matrix

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/labctl/labctl/lab/spec"
)

//go:embed default.yaml
var defaultFile []byte

// DefaultFile is the embedded matrix, comments included.
func DefaultFile() []byte { return defaultFile }

// File is a matrix: its named cells, then its grid's, in the order they run and report.
type File struct {
	Cells []Cell `yaml:"cells"`
	Grid  *Grid  `yaml:"grid,omitempty"`
}

// Cell is one kernel/LXC combination: a preset and the lab.yaml fields it overrides. It runs
// as a lab named after the cell.
type Cell struct {
	Name   string         `yaml:"name"`
	Preset string         `yaml:"preset"`
	Lab    map[string]any `yaml:"lab,omitempty"`
	// Spec is the cell's lab: the preset, the overrides, and the cell's name (nil for a grid
	// cell whose lab cannot exist).
	Spec *spec.Spec `yaml:"-"`
	// Point is a grid cell's place in the grid (nil for a named cell).
	Point *Point `yaml:"-"`
	// Excluded says why the cell is not run anywhere: for a named cell, the matrix file says
	// so (excluded: REASON; its lab need not validate here); for a grid cell, an exclude
	// entry's reason or why its lab cannot exist. It is listed and reported, never run.
	Excluded string `yaml:"excluded,omitempty"`
}

var cellNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// CheckCellName refuses what cannot be a cell's name (and so a directory under cells/).
func CheckCellName(name string) error {
	if !cellNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a cell name: cells are named with 1-31 lowercase letters, digits and '-', starting with a letter (labctl matrix list)", name)
	}
	return nil
}

// Load reads the matrix file at path, or the embedded one for "".
func Load(path string) (*File, error) {
	if path == "" {
		return Parse(defaultFile, "the default matrix")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the matrix file: %w (pass an existing file with -f, or none for the default matrix: `labctl matrix show`)", err)
	}
	return Parse(data, path)
}

// Parse decodes a matrix strictly and resolves every cell's lab, reporting every bad cell at
// once by its index and name.
func Parse(data []byte, src string) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	f := &File{}
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %s", src, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(f.Cells) == 0 && f.Grid == nil {
		return nil, fmt.Errorf("%s: no cells: list them under cells: or give a grid: (see `labctl matrix show`)", src)
	}
	var errs []error
	seen := map[string]bool{}
	for i := range f.Cells {
		c := &f.Cells[i]
		where := fmt.Sprintf("%s: cells[%d] (%s)", src, i, c.Name)
		switch {
		case !cellNameRE.MatchString(c.Name):
			errs = append(errs, fmt.Errorf("%s: name %q is not a valid cell name: use 1-31 lowercase letters, digits and '-', starting with a letter (it names the cell's lab)", where, c.Name))
			continue
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("%s: name %q is used twice: give every cell a name of its own", where, c.Name))
			continue
		}
		seen[c.Name] = true
		s, err := c.resolve()
		if err != nil && c.Excluded == "" {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		c.Spec = s
	}
	if f.Grid != nil {
		gc, err := f.Grid.cells()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
		}
		for _, c := range gc {
			if seen[c.Name] {
				errs = append(errs, fmt.Errorf("%s: grid cell %s: a named cell has that name already: rename the named cell", src, c.Name))
			}
			seen[c.Name] = true
		}
		f.Cells = append(f.Cells, gc...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// resolve is the cell's lab: the preset's lab.yaml with the overrides merged in, named after
// the cell, decoded and validated as any lab.yaml.
func (c Cell) resolve() (*spec.Spec, error) {
	src, err := spec.PresetSource(c.Preset)
	if err != nil {
		return nil, fmt.Errorf("preset: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	base, _ := asWritten(&doc).(map[string]any)
	m, err := merge(base, c.Lab)
	if err != nil {
		return nil, fmt.Errorf("lab (preset %s with the cell's overrides): %w", c.Preset, err)
	}
	merged := m.(map[string]any)
	merged["name"] = c.Name
	data, err := yaml.Marshal(merged)
	if err != nil {
		return nil, err
	}
	s, err := spec.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("lab (preset %s with the cell's overrides): %w", c.Preset, err)
	}
	return s, nil
}

// merge lays over onto base: maps merge key by key, lists of named maps (containers) merge
// by name (an item with remove: true takes the base's item of that name out), anything else
// is replaced.
func merge(base, over any) (any, error) {
	switch o := over.(type) {
	case map[string]any:
		b, ok := base.(map[string]any)
		if !ok {
			return o, nil
		}
		out := map[string]any{}
		for k, v := range b {
			out[k] = v
		}
		for k, v := range o {
			m, err := merge(b[k], v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = m
		}
		return out, nil
	case []any:
		b, ok := base.([]any)
		if !ok || !named(o) || !named(b) {
			return o, nil
		}
		out := append([]any{}, b...)
	next:
		for _, item := range o {
			it := item.(map[string]any)
			rm, isRemove := it["remove"]
			if isRemove {
				if rm != true || len(it) != 2 {
					return nil, fmt.Errorf("item %v: remove takes true and only a name beside it ({name: %v, remove: true} takes the preset's %v out)", it["name"], it["name"], it["name"])
				}
			}
			for i, have := range out {
				if have.(map[string]any)["name"] != it["name"] {
					continue
				}
				if isRemove {
					out = append(out[:i:i], out[i+1:]...)
					continue next
				}
				m, err := merge(have, item)
				if err != nil {
					return nil, err
				}
				out[i] = m
				continue next
			}
			if isRemove {
				return nil, fmt.Errorf("item %v: remove: the preset has no item named %v: remove only what it has", it["name"], it["name"])
			}
			out = append(out, item)
		}
		return out, nil
	case nil:
		return base, nil
	}
	return over, nil
}

// named reports whether every item is a map with a name.
func named(items []any) bool {
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok || m["name"] == nil {
			return false
		}
	}
	return true
}

// Select returns the cells named (all for none), in the file's order, or an error naming the
// unknown ones and the cells there are.
func (f *File) Select(names []string) ([]Cell, error) {
	if len(names) == 0 {
		return f.Cells, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Cell
	for _, c := range f.Cells {
		if want[c.Name] {
			out = append(out, c)
			delete(want, c.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		return nil, fmt.Errorf("--cells: no cell %s in the matrix: use some of %s", strings.Join(unknown, ", "), strings.Join(f.names(), ", "))
	}
	return out, nil
}

func (f *File) names() []string {
	var out []string
	for _, c := range f.Cells {
		out = append(out, c.Name)
	}
	return out
}

// Index is the cell's place in the file (-1 when it is not there).
func (f *File) Index(name string) int {
	for i, c := range f.Cells {
		if c.Name == name {
			return i
		}
	}
	return -1
}
