package matrix

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOverridesKeepTheirText: a short commit of digits, a version like 7.0 and a number stay
// as written through a cell's overrides (YAML would make 0800666 the number 800666: a flaky
// test found it, when a temporary commit's short name was all digits); numbers that come back
// the same stay numbers; an unknown field of a cell is refused.
func TestOverridesKeepTheirText(t *testing.T) {
	var f File
	err := yaml.Unmarshal([]byte(`cells:
  - name: a
    preset: trixie
    lab:
      lxc: {ref: 0800666, version: 7.0, expect: "~> 7.0"}
      memory: 2048
      containers: [{name: box1, nesting: true}]
`), &f)
	if err != nil {
		t.Fatal(err)
	}
	lab := f.Cells[0].Lab
	lxc := lab["lxc"].(map[string]any)
	if lxc["ref"] != "0800666" || lxc["version"] != "7.0" || lab["memory"] != 2048 {
		t.Errorf("lab = %#v", lab)
	}
	if c := lab["containers"].([]any)[0].(map[string]any); c["nesting"] != true {
		t.Errorf("containers = %#v", lab["containers"])
	}
	_, err = Parse([]byte("cells:\n  - {name: a, preset: trixie, labs: {}}\n"), "m.yaml")
	if err == nil || !strings.Contains(err.Error(), "field labs not found in type matrix.Cell") {
		t.Errorf("an unknown field of a cell: %v", err)
	}
	// Through a whole cell: the lab reads the commit as written.
	m, err := Parse([]byte(`cells:
  - {name: a, preset: trusty, lab: {box: {name: 0123}}}
`), "m.yaml")
	if err != nil || m.Cells[0].Spec.Box.Name != "0123" {
		t.Errorf("box.name 0123: %v %+v", err, m)
	}
}
