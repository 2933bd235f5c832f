package matrix

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML decodes a cell strictly (name, preset, lab, excluded) and keeps the overrides'
// scalars as written where YAML would change them: a number whose text does not come back the
// same (`ref: 0800666` is not 800666, `version: 7.0` is not 7) stays the text, which a
// string field of lab.yaml then reads as written.
func (c *Cell) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a cell is a map (name, preset, lab, excluded)", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			err = v.Decode(&c.Name)
		case "preset":
			err = v.Decode(&c.Preset)
		case "excluded":
			err = v.Decode(&c.Excluded)
		case "lab":
			lab, ok := asWritten(v).(map[string]any)
			if !ok && v.Tag != "!!null" {
				return fmt.Errorf("line %d: lab is a map of lab.yaml fields", v.Line)
			}
			c.Lab = lab
		default:
			return fmt.Errorf("line %d: field %s not found in type matrix.Cell", k.Line, k.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// asWritten is a YAML value as maps, lists and scalars, a number kept as its text when
// decoding it would not give that text back.
func asWritten(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return asWritten(n.Content[0])
		}
	case yaml.AliasNode:
		return asWritten(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = asWritten(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := []any{}
		for _, it := range n.Content {
			l = append(l, asWritten(it))
		}
		return l
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return n.Value
		}
		switch x := v.(type) {
		case int:
			if strconv.Itoa(x) != n.Value {
				return n.Value
			}
		case float64:
			if strconv.FormatFloat(x, 'g', -1, 64) != n.Value {
				return n.Value
			}
		}
		return v
	}
	return nil
}
