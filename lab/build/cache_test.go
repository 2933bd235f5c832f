package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// stubBox stands in for build-box.sh: it counts its runs in $COUNT, writes a small box holding
// the private key (as the real one does), through $OUT.part, after $STUB_SLEEP seconds.
const stubBox = `set -euo pipefail
echo run >>"$COUNT"
echo "==> stub box build"
mkdir -p "$WORK/box"
printf 'qcow2 of %s\n' "$RELEASE" >"$WORK/box/box.img"
install -m 0600 "$PRIVKEY" "$WORK/box/vagrant_key"
sleep "${STUB_SLEEP:-0}"
tar -C "$WORK/box" -cf "$OUT.part" box.img vagrant_key
mv "$OUT.part" "$OUT"
`

// stubImage stands in for build-image.sh.
const stubImage = `set -euo pipefail
echo run >>"$COUNT"
sleep "${STUB_SLEEP:-0}"
printf 'rootfs of %s\n' "$RELEASE" | tee "$OUT/rootfs.tar.zst.part" >/dev/null
mv "$OUT/rootfs.tar.zst.part" "$OUT/rootfs.tar.zst"
tar -C "$META" -cf "$OUT/meta.tar.xz" .
`

// stubBuilds points the builds at the stub scripts and a cache of the test's own; it returns
// the file that counts the scripts' runs.
func stubBuilds(t *testing.T) (count func() int) {
	t.Helper()
	oldBox, oldImage, oldReady := boxScript, imageScript, hostReady
	t.Cleanup(func() { boxScript, imageScript, hostReady = oldBox, oldImage, oldReady })
	boxScript, imageScript = stubBox, stubImage
	hostReady = func(string, string, ...string) ([]string, error) {
		return []string{"deb http://mirror.invalid/debian bookworm main"}, nil
	}
	dir := t.TempDir()
	t.Setenv("LABCTL_CACHE", filepath.Join(dir, "cache"))
	counter := filepath.Join(dir, "count")
	t.Setenv("COUNT", counter)
	return func() int {
		data, _ := os.ReadFile(counter)
		return strings.Count(string(data), "run\n")
	}
}

func sum(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

func imageRecipe(t *testing.T) ImageRecipe {
	t.Helper()
	r, err := ImageRecipeFor(mustPreset(t, "bookworm"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFaultConcurrentBoxBuildsBuildOnce: two builds of one box recipe at once run the build
// script once; the second waits for the first and both get the same box.
func TestFaultConcurrentBoxBuildsBuildOnce(t *testing.T) {
	faulttest.Count(t, "fault", "concurrent-box-builds")
	count := stubBuilds(t)
	t.Setenv("STUB_SLEEP", "1")
	r := boxRecipe(t, mustPreset(t, "bookworm"))
	var wg sync.WaitGroup
	sums, errs, outs := make([]string, 2), make([]error, 2), make([]bytes.Buffer, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var file string
			file, errs[i] = BuildBox(context.Background(), r, &outs[i], io.Discard)
			if errs[i] == nil {
				data, err := os.ReadFile(file)
				errs[i] = err
				sums[i] = fmt.Sprintf("%x", sha256.Sum256(data))
			}
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("build %d: %v\n%s", i, errs[i], outs[i].String())
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("the build script ran %d times, want once:\n%s\n%s", n, outs[0].String(), outs[1].String())
	}
	if sums[0] != sums[1] {
		t.Fatalf("the two builds got different boxes: %s %s", sums[0], sums[1])
	}
	if !strings.Contains(outs[0].String()+outs[1].String(), "waiting for pid") {
		t.Errorf("the second build did not say whom it waited for:\n%s\n%s", outs[0].String(), outs[1].String())
	}
}

// TestFaultConcurrentImageBuildsBuildOnce: the same for a container image.
func TestFaultConcurrentImageBuildsBuildOnce(t *testing.T) {
	faulttest.Count(t, "fault", "concurrent-image-builds")
	count := stubBuilds(t)
	t.Setenv("STUB_SLEEP", "1")
	r := imageRecipe(t)
	var wg sync.WaitGroup
	imgs, errs := make([]LocalImage, 2), make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs[i], errs[i] = BuildImage(context.Background(), r, io.Discard, io.Discard)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("builds: %v / %v", errs[0], errs[1])
	}
	if n := count(); n != 1 {
		t.Fatalf("the build script ran %d times, want once", n)
	}
	if imgs[0] != imgs[1] || sum(t, imgs[0].Rootfs) != sum(t, imgs[1].Rootfs) {
		t.Fatalf("the two builds got different images: %+v %+v", imgs[0], imgs[1])
	}
}

// TestFaultDamagedBoxIsRebuilt: a cached box whose files were truncated (or whose manifest
// is missing: an unfinished build) is built again, never used.
func TestFaultDamagedBoxIsRebuilt(t *testing.T) {
	faulttest.Count(t, "fault", "truncated-box-cache")
	count := stubBuilds(t)
	r := boxRecipe(t, mustPreset(t, "bookworm"))
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	runs := count()
	for _, name := range []string{"labctl.box", "vagrant_key", "vagrant_key.pub", manifestName} {
		p := filepath.Join(r.Dir(), name)
		if err := os.Truncate(p, 3); err != nil {
			t.Fatalf("the cache entry has no %s: %v", name, err)
		}
		var out bytes.Buffer
		file, err := BuildBox(context.Background(), r, &out, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if count() != runs+1 {
			t.Fatalf("%s truncated: the box was not rebuilt:\n%s", name, out.String())
		}
		runs = count()
		if err := verifyEntry(filepath.Dir(file), r.Key()); err != nil {
			t.Fatalf("after the rebuild: %v", err)
		}
		if name == "labctl.box" && !strings.Contains(out.String(), "damaged") {
			t.Errorf("the rebuild did not say why:\n%s", out.String())
		}
	}
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err != nil || count() != runs {
		t.Fatalf("an intact entry must be used as is (runs %d -> %d, %v)", runs, count(), err)
	}
}

// TestFaultDamagedImageIsRebuilt: the same for a container image, meta.tar.xz included (it
// used to be written in place and counted as the mark of a finished build).
func TestFaultDamagedImageIsRebuilt(t *testing.T) {
	faulttest.Count(t, "fault", "truncated-image-cache")
	count := stubBuilds(t)
	r := imageRecipe(t)
	img, err := BuildImage(context.Background(), r, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{img.Meta, img.Rootfs} {
		runs := count()
		if err := os.Truncate(p, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := BuildImage(context.Background(), r, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		if count() != runs+1 {
			t.Fatalf("%s truncated: the image was not rebuilt", filepath.Base(p))
		}
	}
}

// TestFaultCacheIsPrivate walks the cache after a box and an image build: every directory of
// boxes/ and images/ is 0700, every file in them 0600, and nothing anywhere in the cache that
// holds a private key can be read by group or others.
func TestFaultCacheIsPrivate(t *testing.T) {
	faulttest.Count(t, "fault", "cache-file-modes")
	stubBuilds(t)
	r := boxRecipe(t, mustPreset(t, "bookworm"))
	if _, err := BuildBox(context.Background(), r, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildImage(context.Background(), imageRecipe(t), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	root := os.Getenv("LABCTL_CACHE")
	keys, files := 0, 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		inCache := strings.HasPrefix(rel, "boxes") || strings.HasPrefix(rel, "images")
		switch {
		case d.IsDir() && inCache && st.Mode().Perm() != 0o700:
			t.Errorf("directory %s is %o, want 0700", rel, st.Mode().Perm())
		case !d.IsDir() && inCache && st.Mode().Perm() != 0o600:
			t.Errorf("file %s is %o, want 0600", rel, st.Mode().Perm())
		}
		if !d.IsDir() {
			files++
			if bytes.Contains(mustRead(t, p), []byte("PRIVATE KEY")) {
				keys++
				if st.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s holds a private key and is %o", rel, st.Mode().Perm())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys < 2 || files < 6 {
		t.Fatalf("walked %d files, %d with a private key: want the box and its key at least", files, keys)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
