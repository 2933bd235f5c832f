package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads a lab spec from path ("-" for standard input), strictly, fills defaults and
// validates it.
func Load(path string) (*Spec, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read lab spec: %w (pass an existing lab.yaml with -f, or a preset with --preset)", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read lab spec %s: %w", path, err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a lab spec strictly (unknown fields are errors), fills defaults and
// validates it.
func Parse(data []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	s := &Spec{}
	if err := dec.Decode(s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("lab spec is empty: start from `labctl presets show bookworm`")
		}
		return nil, fmt.Errorf("lab spec: %s", nameFields(data, cleanYAMLError(err)))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("lab spec: more than one YAML document; keep one lab per file")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("lab spec: %s", cleanYAMLError(err))
	}
	if zeros := explicitZeros(&doc); len(zeros) > 0 {
		return nil, errors.Join(zeros...)
	}
	s.Default()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = strings.ReplaceAll(msg, "in type spec.", "in ")
	return msg
}

// typeError is how the YAML decoder says a value has the wrong type, without the field.
var typeError = regexp.MustCompile("line ([0-9]+): cannot unmarshal !!([a-z]+) `([^`]*)` into ([][a-z0-9.]+)")

// goTypes says the decoder's Go types in lab.yaml's words.
var goTypes = map[string]string{"int": "a whole number", "string": "a string", "bool": "true or false", "[]string": "a list of strings"}

// nameFields rewrites the decoder's type errors in msg to name the field at that line of data:
// "line 9: cannot unmarshal !!str `5m` into int" becomes "line 9: boot_timeout: `5m` is not
// a whole number".
func nameFields(data []byte, msg string) string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return msg
	}
	return typeError.ReplaceAllStringFunc(msg, func(m string) string {
		sub := typeError.FindStringSubmatch(m)
		line, _ := strconv.Atoi(sub[1])
		field := fieldAt(&doc, line)
		if field == "" {
			return m
		}
		want := goTypes[sub[4]]
		if want == "" {
			want = "a " + sub[4]
		}
		return fmt.Sprintf("line %d: %s: `%s` is not %s", line, field, sub[3], want)
	})
}

// fieldAt returns the path of the field whose value is at line ("" when none is).
func fieldAt(doc *yaml.Node, line int) string {
	field := ""
	eachField(doc, "", func(p string, val *yaml.Node) {
		if field == "" && val.Kind == yaml.ScalarNode && val.Line == line {
			field = p
		}
	})
	return field
}

// eachField calls visit with every field's path (a.b, list items as a[i]) and value, in the
// order of the document, each value before what it holds.
func eachField(n *yaml.Node, prefix string, visit func(path string, val *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			eachField(c, prefix, visit)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			visit(p, n.Content[i+1])
			eachField(n.Content[i+1], p, visit)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			visit(p, c)
			eachField(c, p, visit)
		}
	}
}

// Marshal renders the spec as a complete lab.yaml that Parse accepts back unchanged.
func (s *Spec) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// zeroMeansDefault are the fields whose empty value 0 means "the default": written out as 0
// it is an error, not the default (an explicit idmap.start: 0 would map container root to
// the VM's root).
var zeroMeansDefault = []string{"cpus", "memory", "boot_timeout", "disk.port", "idmap.start", "idmap.count", "network.max_veths"}

// explicitZeros finds those fields written as 0.
func explicitZeros(doc *yaml.Node) []error {
	var errs []error
	eachField(doc, "", func(p string, val *yaml.Node) {
		if val.Kind == yaml.ScalarNode && val.Value == "0" && slices.Contains(zeroMeansDefault, p) {
			errs = append(errs, &FieldError{Field: p, Value: 0, Msg: "is not allowed: leave the field out for its default"})
		}
	})
	return errs
}
