package layer

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
	"github.com/labctl/labctl/lab/spec"
)

func bookworm(t *testing.T) spec.Spec {
	t.Helper()
	s, err := spec.Source{Preset: "bookworm"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	return *s
}

func inputsOf(s spec.Spec) Inputs {
	return Inputs{Box: "box-key", BoxVolume: "vol_0_1_box.img", Guest: GuestOf(s), Files: "files-sum", Images: []string{"img1"}}
}

// change sets one field of v (a struct field, recursively for structs and slices of structs)
// to another value; it reports the fields it changed, by path.
func changes(t *testing.T, v reflect.Value, path string, each func(path string, undo func())) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			changes(t, v.Field(i), path+"."+v.Type().Field(i).Name, each)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			changes(t, v.Index(0), path+"[0]", each)
			return
		}
		old := reflect.ValueOf(slices.Clone(v.Interface().([]string)))
		v.Set(reflect.Append(v, reflect.ValueOf("extra")))
		each(path, func() { v.Set(old) })
	case reflect.String:
		old := v.String()
		v.SetString(old + "x")
		each(path, func() { v.SetString(old) })
	case reflect.Int, reflect.Int64:
		old := v.Int()
		v.SetInt(old + 1)
		each(path, func() { v.SetInt(old) })
	case reflect.Bool:
		old := v.Bool()
		v.SetBool(!old)
		each(path, func() { v.SetBool(old) })
	default:
		t.Fatalf("%s: a %s field: teach this test to change it", path, v.Kind())
	}
}

// TestKeyPerInput changes every input, one at a time: each field of the spec that reaches
// the guest, the box, its pool volume, the rendered files and the images change the key; the fields of NotGuest do not.
func TestKeyPerInput(t *testing.T) {
	s := bookworm(t)
	base := inputsOf(s).Key()
	seen := 0
	changes(t, reflect.ValueOf(&s).Elem(), "Spec", func(path string, undo func()) {
		defer undo()
		seen++
		top := strings.SplitN(strings.TrimPrefix(path, "Spec."), ".", 2)[0]
		top = strings.SplitN(top, "[", 2)[0]
		changed := inputsOf(s).Key() != base
		if slices.Contains(NotGuest, top) == changed {
			t.Errorf("%s changed: key changed %v, want %v", path, changed, !slices.Contains(NotGuest, top))
		}
	})
	if seen < 40 {
		t.Fatalf("only %d fields changed: the preset has fewer fields than expected", seen)
	}
	if inputsOf(s).Key() != base {
		t.Fatal("the spec was not restored")
	}
	for name, in := range map[string]Inputs{
		"box":        {Box: "other", BoxVolume: "vol_0_1_box.img", Guest: GuestOf(s), Files: "files-sum", Images: []string{"img1"}},
		"box volume": {Box: "box-key", BoxVolume: "vol_0_2_box.img", Guest: GuestOf(s), Files: "files-sum", Images: []string{"img1"}},
		"files":      {Box: "box-key", BoxVolume: "vol_0_1_box.img", Guest: GuestOf(s), Files: "other", Images: []string{"img1"}},
		"images":     {Box: "box-key", BoxVolume: "vol_0_1_box.img", Guest: GuestOf(s), Files: "files-sum", Images: []string{"img2"}},
	} {
		if in.Key() == base {
			t.Errorf("%s changed, the key did not", name)
		}
	}
}

func writeLayer(t *testing.T, dir string) Layer {
	t.Helper()
	l := Layer{Key: "k1", Created: time.Now()}
	for i, f := range []*File{&l.Root, &l.Data} {
		path := filepath.Join(dir, fmt.Sprintf("disk%d.qcow2", i))
		if err := os.WriteFile(path, []byte(strings.Repeat("layer", 1000+i)), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Digest(path)
		if err != nil {
			t.Fatal(err)
		}
		*f = d
	}
	return l
}

// TestVerifyRefusesCorruption: one byte changed in a disk (same size), or a disk shorter or
// gone, and Verify says which disk and why.
func TestVerifyRefusesCorruption(t *testing.T) {
	dir := t.TempDir()
	l := writeLayer(t, dir)
	if err := Verify(l, dir); err != nil {
		t.Fatalf("an intact layer refused: %v", err)
	}
	path := filepath.Join(dir, l.Data.Name)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 100)
	f.Close()
	err = Verify(l, dir)
	if err == nil || !strings.Contains(err.Error(), l.Data.Name) || !strings.Contains(err.Error(), "corrupted") {
		t.Fatalf("a changed byte: got %v", err)
	}
	os.Truncate(filepath.Join(dir, l.Root.Name), 10)
	if err := Verify(Layer{Key: "k1", Root: l.Root, Data: l.Root}, dir); err == nil || !strings.Contains(err.Error(), "10 bytes") {
		t.Fatalf("a shorter disk: got %v", err)
	}
	os.Remove(filepath.Join(dir, l.Root.Name))
	if err := Verify(l, dir); err == nil || !strings.Contains(err.Error(), l.Root.Name) {
		t.Fatalf("a missing disk: got %v", err)
	}
}

func TestStoreRoundTripAndList(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if _, err := s.Get("nope"); err != ErrNone {
		t.Fatalf("missing: %v", err)
	}
	old := Layer{Key: "a", Created: time.Now().Add(-time.Hour), Root: File{Name: "root-a.img"}, Data: File{Name: "a_data.qcow2"}}
	young := Layer{Key: "b", Created: time.Now(), Root: File{Name: "root-b.img"}, Data: File{Name: "b_data.qcow2"}}
	for _, l := range []Layer{old, young} {
		if err := s.Put(l); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Key != "b" {
		t.Fatalf("list: %v %v", list, err)
	}
	os.WriteFile(filepath.Join(s.Dir, "c.json"), []byte(`{"key":"other"}`), 0o644)
	if _, err := s.Get("c"); err == nil {
		t.Fatal("a record of another key was read")
	}
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); err != ErrNone {
		t.Fatalf("removed: %v", err)
	}
}

func TestPruneByAgeThenSize(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	mk := func(key string, age time.Duration, size int64) Layer {
		return Layer{Key: key, Created: now.Add(-age), Root: File{Size: size}}
	}
	ls := []Layer{mk("new", time.Hour, 100), mk("mid", 48*time.Hour, 100), mk("old", 30*24*time.Hour, 100)}
	keys := func(ls []Layer) (k []string) {
		for _, l := range ls {
			k = append(k, l.Key)
		}
		return k
	}
	if got := keys(Prune(ls, now, 7*24*time.Hour, 0)); !slices.Equal(got, []string{"old"}) {
		t.Errorf("by age: %v", got)
	}
	if got := keys(Prune(ls, now, 0, 150)); !slices.Equal(got, []string{"mid", "old"}) {
		t.Errorf("by size: %v", got)
	}
	ls[2].Used = now
	if got := keys(Prune(ls, now, 7*24*time.Hour, 0)); len(got) != 0 {
		t.Errorf("a layer used now is not old: %v", got)
	}
	if got := Prune(ls, now, 0, 0); len(got) != 0 {
		t.Errorf("no limits: %v", keys(got))
	}
}

// TestFaultLayerRecordNamingOtherFilesRefused: a layer record whose disk names are paths, or
// no names of its layer (an edited or planted record), is refused by name with what to do:
// labctl would read and remove those files in the pool's directory.
func TestFaultLayerRecordNamingOtherFilesRefused(t *testing.T) {
	faulttest.Count(t, "input", "layer-record-names")
	s := Store{Dir: t.TempDir()}
	for _, bad := range []string{"../../etc/passwd-k1", "/etc/k1", "k1/../../x", "..", "", "other-disk.qcow2"} {
		if err := s.Put(Layer{Key: "k1", Root: File{Name: "root-k1.img"}, Data: File{Name: bad}}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get("k1")
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) || !strings.Contains(err.Error(), "remove the record") {
			t.Errorf("a record naming the disk %q was read, or not refused by name with what to do: %v", bad, err)
		}
	}
	if err := s.Put(Layer{Key: "k1", Root: File{Name: "root-k1.img"}, Data: File{Name: "labctl-VAGRANTSLASH-layer-k1_data.qcow2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("k1"); err != nil {
		t.Fatalf("a record as labctl writes it was refused: %v", err)
	}
}
