package spec

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed presets/*.yaml
var presetFS embed.FS

// DefaultPreset is the lab labctl uses when neither -f nor --preset is given: it runs
// offline on any Linux host with qemu.
const DefaultPreset = "bookworm"

// PresetNames lists the embedded presets, sorted.
func PresetNames() []string {
	entries, _ := presetFS.ReadDir("presets")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// PresetSource is the preset's lab.yaml as embedded, comments included.
func PresetSource(name string) ([]byte, error) {
	data, err := presetFS.ReadFile("presets/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("preset %q does not exist: use one of %s (see `labctl presets`)", name, strings.Join(PresetNames(), ", "))
	}
	return data, nil
}

// Preset returns the named preset, defaulted and validated.
func Preset(name string) (*Spec, error) {
	data, err := PresetSource(name)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("preset %s: %w", name, err)
	}
	return s, nil
}
