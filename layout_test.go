package labctl_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// flow ranks labctl's packages in the order data flows through them: spec -> rendered files
// -> host and box -> Vagrant -> connection -> steps -> the lab, which joins them -> the CLI
// and the suite. A package may import only packages of a lower rank.
var flow = map[string]int{
	"":                 0, // the root: Vagrantfile.tmpl
	"lab/lxc":          0, // one table of LXC versions
	"lab/release":      0, // one table of releases
	"lab/provider":     0, // one table of providers
	"lab/labdir":       0, // the names of a lab directory's files
	"lab/action":       0, // a verb as an ordered list of actions, with its rollback
	"lab/spec":         1,
	"lab/render":       2,
	"lab/layer":        2, // provisioned layers: their key (from the spec), records, checks
	"lab/host":         3,
	"lab/build":        4,
	"lab/vagrant":      5,
	"lab/matrix":       6, // cells, their runs and reports: spec, release, host (never a lab itself)
	"provision/remote": 6,
	// A test helper (a real sshd and a proxy that stalls or cuts): it imports no labctl package.
	"provision/remote/sshdtest": 0,
	"lab/faulttest":             0, // a test helper, likewise
	"lab/golden":                0, // a test helper: golden files under testdata/
	"provision/agent":           7,
	"provision":                 8,  // the steps in the guest: never the lab itself
	"lab":                       9,  // the lab: state, provider, the connection, the verbs
	"e2e/labtest":               10, // what users import to write their own tests on a lab
	"e2e/labtest/example":       11,
	"e2e/suite":                 11, // labctl's e2e suite, on e2e/labtest
	"cmd/labctl":                12, // the CLI, which ships the suite (labctl test)
	"e2e":                       12, // the suite run by `ginkgo ./e2e`
	// Measures the labctl binary from outside: it takes only names and pure helpers from
	// labctl (benchImports), never a lab to run in its own process.
	"scripts/bench": 4,
	// The seeded chaos soak drives the labctl binary from outside, as the benchmark does.
	"scripts/chaos": 4,
}

// benchImports are the only labctl packages the benchmark may import.
var benchImports = []string{"lab/labdir", "lab/spec", "lab/host"}

const module = "github.com/labctl/labctl"

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

// TestImportsFollowTheFlow: no package imports one above it in the flow, and every package
// has its place in it.
func TestImportsFollowTheFlow(t *testing.T) {
	for _, p := range listPackages(t) {
		me, ok := flow[rel(p.ImportPath)]
		if !ok {
			t.Errorf("package %s has no place in the flow: add it to layout_test.go", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if them := flow[rel(imp)]; them >= me {
				t.Errorf("%s (rank %d) imports %s (rank %d): data flows the other way", p.ImportPath, me, imp, them)
			}
			if strings.HasPrefix(rel(p.ImportPath), "scripts/") && !slices.Contains(benchImports, rel(imp)) {
				t.Errorf("%s imports %s: it drives labctl from outside, with only %v", p.ImportPath, imp, benchImports)
			}
		}
	}
}

// TestFilesStaySmall: no non-test Go file over 350 lines.
func TestFilesStaySmall(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); {
				n++
			}
			if n > 350 {
				t.Errorf("%s has %d lines: split it by subject (at most 350)", path, n)
			}
		}
	}
}

// TestFunctionsStayShort: no non-test function (with the closures in it) over 60 lines.
func TestFunctionsStayShort(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			fs := token.NewFileSet()
			file, err := parser.ParseFile(fs, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				if n := fs.Position(fn.End()).Line - fs.Position(fn.Pos()).Line + 1; n > 60 {
					t.Errorf("%s:%d: %s has %d lines: split it (at most 60)", path, fs.Position(fn.Pos()).Line, fn.Name.Name, n)
				}
			}
		}
	}
}

// TestReadmeExampleIsTheTestedOne: the README shows e2e/labtest/example/example_test.go as it
// is, so the example users copy is the one the e2e suite runs.
func TestReadmeExampleIsTheTestedOne(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile("e2e/labtest/example/example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+string(ex)+"```") {
		t.Fatal("README.md does not show e2e/labtest/example/example_test.go verbatim: copy it into the \"Your own tests on a lab\" section")
	}
}
