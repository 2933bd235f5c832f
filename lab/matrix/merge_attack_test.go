package matrix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultMergeRefusesHostileResults: `matrix merge` reads directories made elsewhere (CI
// jobs' artifacts). A result.json whose cell is a path ("../../x", "/abs") would make merge
// write cells/<cell>/ anywhere; a result file that is a symlink would copy any file of this
// host (a private key) into tmp/matrix. Both are refused, naming the file, and nothing is
// written outside out.
func TestFaultMergeRefusesHostileResults(t *testing.T) {
	faulttest.Count(t, "input", "matrix-merge-hostile-results")
	f, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	out := filepath.Join(base, "work", "tmp", "matrix")
	for _, cell := range []string{"../../../escaped", "/abs-escaped", "a/../../../../escaped", "..", "Bad Name"} {
		art := filepath.Join(t.TempDir(), "artifact")
		os.MkdirAll(art, 0o755)
		data, _ := json.Marshal(Result{Cell: cell, Status: Passed})
		os.WriteFile(filepath.Join(art, "result.json"), data, 0o644)
		os.WriteFile(filepath.Join(art, "junit.xml"), []byte("<testsuites/>"), 0o644)
		_, err := Merge(out, []string{art}, f, nil, libvirtHost(), "merger")
		if err == nil || !strings.Contains(err.Error(), filepath.Join(art, "result.json")) || !strings.Contains(err.Error(), "not a cell name") {
			t.Errorf("a result of cell %q was merged, or not refused by name: %v", cell, err)
		}
	}
	filepath.Walk(base, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasPrefix(info.Name(), "junit") && !strings.Contains(p, "artifact") {
			t.Errorf("merge wrote %s", p)
		}
		if err == nil && strings.Contains(info.Name(), "escaped") {
			t.Errorf("merge made %s", p)
		}
		return nil
	})
	secret := filepath.Join(base, "id_ed25519")
	os.WriteFile(secret, []byte("PRIVATE KEY"), 0o600)
	for _, name := range []string{"junit.xml", "result.json"} {
		art := filepath.Join(t.TempDir(), "artifact")
		os.MkdirAll(art, 0o755)
		data, _ := json.Marshal(Result{Cell: "bookworm", Status: Passed})
		os.WriteFile(filepath.Join(art, "result.json"), data, 0o644)
		os.Remove(filepath.Join(art, name))
		os.Symlink(secret, filepath.Join(art, name))
		_, err := Merge(out, []string{art}, f, nil, libvirtHost(), "merger")
		if err == nil || !strings.Contains(err.Error(), filepath.Join(art, name)+" is a symlink") {
			t.Errorf("a symlinked %s was merged: %v", name, err)
		}
	}
	filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if data, _ := os.ReadFile(p); err == nil && !info.IsDir() && strings.Contains(string(data), "PRIVATE KEY") {
			t.Errorf("merge copied the symlink's target into %s", p)
		}
		return nil
	})
}
