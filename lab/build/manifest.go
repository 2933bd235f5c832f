package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/lab/host"
)

// manifestName is the file that makes a cache entry count: the name, size and sha256 of each
// of its files, written last (through a temporary file, synced and renamed). An entry
// without it was never finished; one whose files differ from it was damaged: both are built
// again.
const manifestName = "manifest.json"

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type manifest struct {
	Key   string         `json:"key"`
	Files []manifestFile `json:"files"`
}

// errNoEntry is a cache entry that does not exist, or was never finished.
var errNoEntry = errors.New("no finished build")

// finishEntry makes the files of a built entry private (0600) and writes its manifest, last.
func finishEntry(dir, key string, names ...string) error {
	m := manifest{Key: key}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.Chmod(p, 0o600); err != nil {
			return err
		}
		f, err := fileSum(p)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return host.WriteFileAtomic(filepath.Join(dir, manifestName), append(data, '\n'), 0o600)
}

// verifyEntry returns nil when dir holds a finished, unchanged build of key: its manifest,
// and every file the manifest lists with its size and sha256. Otherwise it says what
// differs (errNoEntry: nothing, or an unfinished build).
func verifyEntry(dir, key string) error {
	data, err := readNoFollow(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return errNoEntry
	} else if err != nil {
		return err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s is not a manifest: %w", filepath.Join(dir, manifestName), err)
	}
	if m.Key != key || len(m.Files) == 0 {
		return fmt.Errorf("%s is of recipe %q, not %q", filepath.Join(dir, manifestName), m.Key, key)
	}
	for _, want := range m.Files {
		p := filepath.Join(dir, want.Name)
		st, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !st.Mode().IsRegular() || st.Size() != want.Size {
			return fmt.Errorf("%s is %d bytes (%s), the manifest says %d", p, st.Size(), st.Mode().Type(), want.Size)
		}
		got, err := fileSum(p)
		if err != nil {
			return err
		}
		if got.SHA256 != want.SHA256 {
			return fmt.Errorf("%s changed since it was built (sha256 %.12s, the manifest says %.12s)", p, got.SHA256, want.SHA256)
		}
	}
	return nil
}

func fileSum(p string) (manifestFile, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return manifestFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return manifestFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	return manifestFile{Name: filepath.Base(p), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func readNoFollow(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// lockEntry takes the lock of the cache entry dir (dir.lock, beside it), waiting while
// another labctl builds it; w is told whom it waits for.
func lockEntry(ctx context.Context, dir, what string, w io.Writer) (*host.Lock, error) {
	if err := host.PrivateDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	return host.WaitLock(ctx, dir+".lock", what, func(b *host.BusyError) {
		fmt.Fprintf(w, "%s: waiting for pid %d (%s) to finish it\n", what, b.PID, b.What)
	})
}

// BoxImageSize is the size of box.img inside a .box file: what vagrant-libvirt uploads into
// the pool, byte for byte.
func BoxImageSize(boxFile string) (int64, error) {
	f, err := os.Open(boxFile)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f) // skips the other members by seeking
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return 0, fmt.Errorf("%s has no box.img", boxFile)
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", boxFile, err)
		}
		if strings.TrimPrefix(h.Name, "./") == "box.img" {
			return h.Size, nil
		}
	}
}

// cacheEntry is one build in the cache: its directory, its key, its name in progress lines and
// the files a finished build holds.
type cacheEntry struct {
	dir, key, label string
	files           []string
}

// ensure runs build in a fresh work directory unless the cache holds a finished build of the
// entry; one build of an entry runs at a time (a second waits, then takes its files). An
// unfinished build never counts and is not left behind. build returns what to add to the
// "built in" line; cachedNote is added to the "cached" line. built says whether it built.
func (e cacheEntry) ensure(ctx context.Context, w io.Writer, cachedNote string, build func(work string) (string, error)) (built bool, err error) {
	lock, err := lockEntry(ctx, e.dir, e.label, w)
	if err != nil {
		return false, err
	}
	defer lock.Unlock()
	if err := verifyEntry(e.dir, e.key); err == nil {
		fmt.Fprintf(w, "%s: cached%s\n", e.label, cachedNote)
		return false, nil
	} else if !errors.Is(err, errNoEntry) {
		fmt.Fprintf(w, "%s: the cached build is damaged (%v): building it again\n", e.label, err)
	}
	start := time.Now()
	work, err := freshEntry(e.dir)
	if err != nil {
		return false, err
	}
	defer func() { dropUnfinished(e.dir, work, built) }()
	done, err := build(work)
	if err != nil {
		return false, err
	}
	if err := finishEntry(e.dir, e.key, e.files...); err != nil {
		return false, fmt.Errorf("%s: %w", e.label, err)
	}
	fmt.Fprintf(w, "%s: built in %s%s\n", e.label, time.Since(start).Round(time.Second), done)
	return true, nil
}
