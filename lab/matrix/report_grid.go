package matrix

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-version"
)

// GridTable is the summary's grid: kernels down, LXC versions across, and at each crossing
// the cells that ran that pair (on any userland and hierarchy), each with a mark per level.
type GridTable struct {
	Kernels, LXCs []string
	At            map[[2]string][]GridEntry
}

// GridEntry is one cell at a crossing of the grid.
type GridEntry struct {
	Cell, Status, Reason string
	// Where says the userland, and the hierarchy when it is v1 ("forky", "bookworm, v1").
	Where string
	// Marks are the levels' marks: VM, first level (unprivileged), nested.
	Marks string
}

// Entries are the entries at kernel k, LXC l.
func (g GridTable) Entries(k, l string) []GridEntry { return g.At[[2]string{k, l}] }

// GridLegend explains the marks.
const GridLegend = "Marks per cell: VM, first level (unprivileged box1), nested (n1): ✓ passed, ✗ failed, · nothing ran; excluded and skipped cells say why in the table below."

// mark is one level's mark.
func mark(c Counts) string {
	switch {
	case c.Failed > 0:
		return "✗"
	case c.Passed > 0:
		return "✓"
	}
	return "·"
}

// Grid places every result that has a kernel and an LXC axis (cells whose box labctl builds).
func (r Report) Grid() GridTable {
	g := GridTable{At: map[[2]string][]GridEntry{}}
	seenK, seenL := map[string]bool{}, map[string]bool{}
	for _, res := range r.Results {
		if res.AxisKernel == "" || res.AxisLXC == "" {
			continue
		}
		if !seenK[res.AxisKernel] {
			seenK[res.AxisKernel] = true
			g.Kernels = append(g.Kernels, res.AxisKernel)
		}
		if !seenL[res.AxisLXC] {
			seenL[res.AxisLXC] = true
			g.LXCs = append(g.LXCs, res.AxisLXC)
		}
		e := GridEntry{Cell: res.Cell, Status: res.Status, Reason: res.Reason, Where: res.Userland}
		if res.Cgroup == "v1" {
			e.Where += ", v1"
		}
		switch res.Status {
		case Passed, Failed:
			e.Marks = mark(res.Levels["host"]) + mark(res.Levels["unpriv"]) + mark(res.Levels["nested"])
			if res.Status == Failed && !strings.Contains(e.Marks, "✗") {
				e.Marks = "✗ (before the levels)" // labctl up, or the suite's setup
			}
		default:
			e.Marks = res.Status
		}
		key := [2]string{res.AxisKernel, res.AxisLXC}
		g.At[key] = append(g.At[key], e)
	}
	sortVersions(g.Kernels)
	sortVersions(g.LXCs)
	return g
}

// sortVersions sorts versions in version order (text order for what does not parse).
func sortVersions(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool {
		a, errA := version.NewVersion(vs[i])
		b, errB := version.NewVersion(vs[j])
		if errA != nil || errB != nil {
			return vs[i] < vs[j]
		}
		return a.LessThan(b)
	})
}

// gridMarkdown is the grid as a Markdown table ("" when no result has axes).
func (r Report) gridMarkdown() string {
	g := r.Grid()
	if len(g.Kernels) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("### Kernel × LXC\n\n" + GridLegend + "\n\n| kernel \\ LXC |")
	for _, l := range g.LXCs {
		fmt.Fprintf(&b, " %s |", l)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(g.LXCs)) + "\n")
	for _, k := range g.Kernels {
		fmt.Fprintf(&b, "| **%s** |", k)
		for _, l := range g.LXCs {
			var parts []string
			for _, e := range g.Entries(k, l) {
				parts = append(parts, fmt.Sprintf("%s %s (%s)", e.Marks, e.Cell, e.Where))
			}
			if len(parts) == 0 {
				parts = []string{"-"}
			}
			fmt.Fprintf(&b, " %s |", strings.Join(parts, "<br>"))
		}
		b.WriteString("\n")
	}
	return b.String() + "\n"
}
