package build

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultCacheUnreadableByOtherUser: another local user (uid 65534), with every directory
// above the cache open to it (as /var/cache is), can neither read the cached box, the box's
// private key or an image, nor list the cache's directories: EACCES on each.
func TestFaultCacheUnreadableByOtherUser(t *testing.T) {
	faulttest.Count(t, "fault", "cache-read-by-other-user")
	if os.Geteuid() != 0 {
		t.Skip("another user's attack needs root (to run a child as uid 65534)")
	}
	stubBuilds(t)
	r := boxRecipe(t, mustPreset(t, "bookworm"))
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	img := imageRecipe(t)
	if _, err := BuildImage(context.Background(), img, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	root := os.Getenv("LABCTL_CACHE")
	faulttest.Traversable(t, root)
	var files, dirs []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != root {
			if d.IsDir() {
				dirs = append(dirs, p)
			} else if d.Type().IsRegular() {
				files = append(files, p)
			}
		}
		return err
	})
	for _, want := range []string{r.File(), filepath.Join(r.Dir(), "vagrant_key")} {
		if !contains(files, want) {
			t.Fatalf("the cache holds no %s: %v", want, files)
		}
	}
	for _, p := range files {
		if err := faulttest.AsOtherUser(t, "read", p); !errors.Is(err, syscall.EACCES) {
			t.Errorf("another user reading %s: %v, want EACCES", p, err)
		}
	}
	for _, d := range dirs {
		if err := faulttest.AsOtherUser(t, "list", d); !errors.Is(err, syscall.EACCES) {
			t.Errorf("another user listing %s: %v, want EACCES", d, err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestFaultHardLinksInCacheNotWritten: a cache entry's lock planted as a hard link to a file
// elsewhere is refused, naming it; files planted as hard links in an entry and its work
// directory are removed with the unfinished entry before the build, never written into.
func TestFaultHardLinksInCacheNotWritten(t *testing.T) {
	faulttest.Count(t, "input", "hard-links-in-cache")
	stubBuilds(t)
	r := boxRecipe(t, mustPreset(t, "bookworm"))
	const precious = "precious: not labctl's\n"
	target := filepath.Join(os.Getenv("LABCTL_CACHE"), "elsewhere")
	os.MkdirAll(filepath.Dir(r.Dir()), 0o700)
	os.WriteFile(target, []byte(precious), 0o644)
	os.Link(target, r.Dir()+".lock")
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), r.Dir()+".lock has 2 hard links") {
		t.Errorf("a hard-linked lock of a cache entry: %v", err)
	}
	os.Remove(r.Dir() + ".lock")
	for _, p := range []string{r.File(), r.File() + ".part", filepath.Join(r.Dir(), "vagrant_key"), filepath.Join(r.Dir()+".work", "box", "box.img")} {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.Link(target, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(target); string(data) != precious {
		t.Fatalf("the build wrote into a hard-linked file: %q", data)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(target, &st); err != nil || st.Nlink != 1 {
		t.Errorf("a planted link is still in the cache (%d links): %v", st.Nlink, err)
	}
}
