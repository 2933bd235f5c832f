package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Plan is the runnable cells as a CI job matrix: format github is the JSON of a
// strategy.matrix (an include entry per cell: cell, preset, box), gitlab the YAML of a job's
// parallel:matrix (a CELL variable). Each job then runs `labctl matrix run --cells $CELL`.
func Plan(cells []Cell, h Host, format string) ([]byte, error) {
	var run []Cell
	for _, c := range cells {
		if NeedsOf(c, h).Runnable {
			run = append(run, c)
		}
	}
	if len(run) == 0 {
		return nil, errors.New("no cell runs on this host (see `labctl matrix list`): a CI job matrix needs at least one")
	}
	switch format {
	case "github":
		type entry struct {
			Cell   string `json:"cell"`
			Preset string `json:"preset"`
			Box    string `json:"box"`
		}
		var m struct {
			Include []entry `json:"include"`
		}
		for _, c := range run {
			m.Include = append(m.Include, entry{c.Name, c.Preset, c.Spec.BoxName()})
		}
		data, err := json.Marshal(m)
		return append(data, '\n'), err
	case "gitlab":
		var b strings.Builder
		b.WriteString("parallel:\n  matrix:\n    - CELL:\n")
		for _, c := range run {
			fmt.Fprintf(&b, "        - %s\n", c.Name)
		}
		return []byte(b.String()), nil
	}
	return nil, fmt.Errorf("--format %q is not one labctl prints: use github (strategy.matrix JSON) or gitlab (parallel:matrix YAML)", format)
}

// resultFiles are the files of a cell's directory that a merge copies.
var resultFiles = []string{"result.json", "junit.xml", "report.json", "lab.yaml", "run.log"}

// Merge gathers the cell results found anywhere under dirs (each a `matrix run` output, a
// cell's directory, or a CI artifact holding either) into out/cells/, then completes the
// cells expected: a cell of cells this host cannot run is skipped with its reason, a runnable
// one that no directory holds a result of is failed ("no result"). Two results of one cell
// are an error. It returns the cells merged.
func Merge(out string, dirs []string, f *File, cells []Cell, h Host, machine string) ([]string, error) {
	lk, err := LockOut(out, "matrix merge")
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	from, err := findResults(dirs)
	if err != nil {
		return nil, err
	}
	merged, err := copyResults(out, from)
	if err != nil {
		return nil, err
	}
	// A merge is no single run: its wall time is not known.
	os.Remove(filepath.Join(out, "run.json"))
	for _, c := range cells {
		if _, ok := from[c.Name]; ok {
			continue
		}
		r := newResult(c, f.Index(c.Name), machine)
		r.Started = time.Now()
		if n := NeedsOf(c, h); !n.Runnable {
			r.Status, r.Reason = n.status(), n.Reason
		} else {
			r.Status, r.Reason = Failed, "no result: none of the merged directories holds one (did its job run and upload tmp/matrix?)"
		}
		dir := filepath.Join(out, "cells", c.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := r.write(dir); err != nil {
			return nil, err
		}
	}
	sort.Strings(merged)
	return merged, nil
}

// findResults finds every cell's result.json under dirs: the directory of each, by cell.
func findResults(dirs []string) (map[string]string, error) {
	from := map[string]string{}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "result.json" {
				return err
			}
			data, err := readPlain(p)
			if err != nil {
				return err
			}
			var r Result
			if err := json.Unmarshal(data, &r); err != nil || r.Cell == "" {
				return fmt.Errorf("merge: %s is not a cell's result.json (%v)", p, err)
			}
			// The cell names a directory under out/cells: "../x" would write anywhere.
			if err := CheckCellName(r.Cell); err != nil {
				return fmt.Errorf("merge: %s: cell %w; remove that file, or merge only the jobs' tmp/matrix directories", p, err)
			}
			if prev, ok := from[r.Cell]; ok {
				return fmt.Errorf("merge: cell %s has two results, %s and %s: merge one of them", r.Cell, prev, filepath.Dir(p))
			}
			from[r.Cell] = filepath.Dir(p)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(from) == 0 {
		return nil, fmt.Errorf("merge: no result.json under %s: pass the directories `labctl matrix run` wrote (tmp/matrix) or their CI artifacts", strings.Join(dirs, ", "))
	}
	return from, nil
}

// copyResults replaces out/cells with the result files of the cells in from. They are copied
// aside first: a source may be out/cells itself, which is replaced as a whole so that no
// result of an earlier run stays behind.
func copyResults(out string, from map[string]string) ([]string, error) {
	stage := filepath.Join(out, "cells.merge")
	if err := os.RemoveAll(stage); err != nil {
		return nil, err
	}
	var merged []string
	for cell, src := range from {
		dst := filepath.Join(stage, cell)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return nil, err
		}
		for _, name := range resultFiles {
			data, err := readPlain(filepath.Join(src, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
				return nil, err
			}
		}
		// A failed cell's evidence (its lab's logs) comes along.
		ev, _ := os.ReadDir(filepath.Join(src, EvidenceDir))
		for _, e := range ev {
			if !e.Type().IsRegular() {
				continue
			}
			if err := os.MkdirAll(filepath.Join(dst, EvidenceDir), 0o755); err != nil {
				return nil, err
			}
			if err := copyTail(filepath.Join(src, EvidenceDir, e.Name()), filepath.Join(dst, EvidenceDir, e.Name()), evidenceMax); err != nil {
				return nil, err
			}
		}
		merged = append(merged, cell)
	}
	if err := os.RemoveAll(filepath.Join(out, "cells")); err != nil {
		return nil, err
	}
	return merged, os.Rename(stage, filepath.Join(out, "cells"))
}

// readPlain reads the regular file p, never through a symlink: a merged directory (a CI job's
// artifact) could hold a link to any file of this host, which would be copied into out.
func readPlain(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("merge: %s is a symlink: a cell's result files are plain files (a link could name any file of this host); remove it", p)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("merge: %s is not a regular file: a cell's result files are plain files; remove it", p)
	}
	return io.ReadAll(f)
}
