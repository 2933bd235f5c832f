package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/labctl/labctl/lab/host"
)

// corrupt damages one byte in the middle of what the next new VM of the lab would use: the
// container image's rootfs in labctl's cache, or the data disk of its provisioned layer (a
// pool volume; the lab that was backed by it was just destroyed). labctl must refuse it,
// make it again, and the lab come up right.
func (s *soak) corrupt(pick uint64) string {
	targets := []func() (string, error){s.imageFile, s.layerDisk}
	path, err := targets[pick%2]()
	if err != nil {
		path, err = targets[(pick+1)%2]()
	}
	if err != nil {
		return "missed: " + err.Error()
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "missed: " + err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return fmt.Sprintf("missed: %s: %v", path, err)
	}
	at := st.Size() / 2
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		return "missed: " + err.Error()
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		return "missed: " + err.Error()
	}
	return fmt.Sprintf("flipped byte %d of %s", at, path)
}

// imageFile is the rootfs of the preset's container image in the cache (the newest entry of
// the release).
func (s *soak) imageFile() (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(host.CacheDir(), "images", s.o.preset+"-*", "rootfs.tar.*"))
	if len(dirs) == 0 {
		return "", fmt.Errorf("no cached image of %s", s.o.preset)
	}
	sort.Slice(dirs, func(i, j int) bool { return modTime(dirs[i]) > modTime(dirs[j]) })
	return dirs[0], nil
}

// layerDisk is the data disk of the most recently used provisioned layer, found through its
// record in the cache and the pool's path for it.
func (s *soak) layerDisk() (string, error) {
	recs, _ := filepath.Glob(filepath.Join(host.CacheDir(), "layers", "*.json"))
	var newest string
	var used string
	for _, r := range recs {
		var rec struct {
			Used string `json:"used"`
			Data struct {
				Name string `json:"name"`
			} `json:"data"`
		}
		data, err := os.ReadFile(r)
		if err != nil || json.Unmarshal(data, &rec) != nil || rec.Data.Name == "" {
			continue
		}
		if rec.Used >= used {
			newest, used = rec.Data.Name, rec.Used
		}
	}
	if newest == "" {
		return "", fmt.Errorf("no provisioned layer is cached")
	}
	out, err := s.virsh("vol-path", "--pool", host.Pool, newest)
	if err != nil {
		return "", fmt.Errorf("vol-path %s: %s", newest, out)
	}
	return strings.TrimSpace(out), nil
}

func modTime(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.ModTime().UnixNano()
}
