// Package layer keeps provisioned layers: the disks of a lab as its provisioning left them,
// before any test, content-addressed by everything that shaped them. A lab whose layer is
// cached boots from copy-on-write overlays of it instead of being provisioned. This package
// knows the key, the record of each layer and how it is verified and pruned; the provider
// makes and uses the disks.
package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Inputs is everything that shapes a provisioned lab's disks. Each field changes the key.
type Inputs struct {
	// Box is the key of the box's build recipe (release, kernel, LXC, cgroup, scripts).
	Box string `json:"box"`
	// BoxVolume is the pool volume of that build the layer's root disk is a delta over.
	BoxVolume string `json:"box_volume"`
	// Guest is the spec as provisioning reads it: every field that reaches the guest (the
	// VM's CPUs, memory, accelerator, provider, libvirt daemon and boot timeout do not).
	Guest json.RawMessage `json:"guest"`
	// Files is the sha256 of every guest file labctl renders for the lab (what provisioning
	// writes, from labctl's templates).
	Files string `json:"files"`
	// Images are the keys of the container images provisioning uploads (their recipes and
	// build script).
	Images []string `json:"images,omitempty"`
}

// labctl's own provisioning code is not an input: a layer made by another labctl is checked
// by this one's provisioning when a lab boots from it, which changes what differs and says so
// (as `labctl up` does on a lab provisioned by an older labctl).

// Key is the layer's name: the first 16 hex digits of the sha256 of its inputs.
func (in Inputs) Key() string {
	data, _ := json.Marshal(in)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

// File is one disk of a layer: a file in the pool directory, its size and sha256.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Layer is the record of a cached layer (<dir>/<key>.json).
type Layer struct {
	Key    string `json:"key"`
	Inputs Inputs `json:"inputs"`
	// Flavour is the labctl box the layer was made on (its name without labctl/).
	Flavour string    `json:"flavour"`
	Root    File      `json:"root"`
	Data    File      `json:"data"`
	Created time.Time `json:"created"`
	// Used is when a lab last booted from it.
	Used time.Time `json:"used"`
	// From is the lab whose provisioning made it, and how long that provisioning took.
	From          string        `json:"from"`
	ProvisionTook time.Duration `json:"provision_took"`
}

// Bytes is the size of the layer's disks.
func (l Layer) Bytes() int64 { return l.Root.Size + l.Data.Size }

// Store is the directory of layer records (the disks live in the provider's pool).
type Store struct{ Dir string }

func (s Store) path(key string) string { return filepath.Join(s.Dir, key+".json") }

// ErrNone is a key without a record.
var ErrNone = errors.New("no layer")

// Get reads the record of key.
func (s Store) Get(key string) (Layer, error) {
	data, err := os.ReadFile(s.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return Layer{}, ErrNone
	}
	if err != nil {
		return Layer{}, err
	}
	var l Layer
	if err := json.Unmarshal(data, &l); err != nil || l.Key != key {
		return Layer{}, fmt.Errorf("layer record %s is not labctl's (remove it: `labctl cache prune --all`): %v", s.path(key), err)
	}
	// The disks' names become paths in the pool that labctl reads and removes: each must be
	// a plain file name carrying the layer's key, as labctl names them.
	for _, f := range []File{l.Root, l.Data} {
		if f.Name != filepath.Base(f.Name) || f.Name == ".." || !strings.Contains(f.Name, key) {
			return Layer{}, fmt.Errorf("layer record %s names the disk %q, which is no file name of layer %s: labctl does not read or remove it; remove the record (`rm %s`)", s.path(key), f.Name, key, s.path(key))
		}
	}
	return l, nil
}

// Put writes the record (atomically: a record is there whole or not at all).
func (s Store) Put(l Layer) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.Dir, ".layer-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path(l.Key))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Remove deletes the record of key (the caller deletes its disks first).
func (s Store) Remove(key string) error {
	err := os.Remove(s.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// List reads every record, the newest first.
func (s Store) List() ([]Layer, error) {
	names, err := filepath.Glob(filepath.Join(s.Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Layer
	for _, n := range names {
		l, err := s.Get(strings.TrimSuffix(filepath.Base(n), ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Layer) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Digest reads the file at path: its size and sha256.
func Digest(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{Name: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Verify checks the layer's disks in dir against the record: present, of the recorded size
// and sha256. An error says which disk differs and how.
func Verify(l Layer, dir string) error {
	for _, want := range []File{l.Root, l.Data} {
		got, err := Digest(filepath.Join(dir, want.Name))
		if err != nil {
			return fmt.Errorf("layer %s: disk %s: %w", l.Key, want.Name, err)
		}
		if got.Size != want.Size || got.SHA256 != want.SHA256 {
			return fmt.Errorf("layer %s: disk %s is %d bytes with sha256 %s, its record says %d bytes, %s (changed or corrupted since it was made)",
				l.Key, want.Name, got.Size, short(got.SHA256), want.Size, short(want.SHA256))
		}
	}
	return nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// Prune picks the layers to remove: those not used (or made) for olderThan (0: no age limit),
// then the least recently used until the rest fit in maxBytes (0: no size limit).
func Prune(layers []Layer, now time.Time, olderThan time.Duration, maxBytes int64) []Layer {
	last := func(l Layer) time.Time {
		if l.Used.After(l.Created) {
			return l.Used
		}
		return l.Created
	}
	sorted := slices.Clone(layers)
	slices.SortFunc(sorted, func(a, b Layer) int { return last(b).Compare(last(a)) })
	var gone []Layer
	var kept int64
	for _, l := range sorted {
		switch {
		case olderThan > 0 && now.Sub(last(l)) > olderThan:
			gone = append(gone, l)
		case maxBytes > 0 && kept+l.Bytes() > maxBytes:
			gone = append(gone, l)
		default:
			kept += l.Bytes()
		}
	}
	return gone
}
