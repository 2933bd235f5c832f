package matrix

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Near is a passing cell beside a failed one on the grid (one axis apart) and what differs.
type Near struct {
	Cell string
	// Axis is the axis the two share: "same kernel" or "same LXC".
	Axis string
	// Differs lists what differs, failed → passing ("LXC 4.0.6 → 6.0.4").
	Differs []string
}

// Red is a failed cell as the summary explains it: its reason, what its logs say, the passing
// cells nearest to it, and its evidence files.
type Red struct {
	Result
	Near  []Near
	Files []string
}

// Reds are the failed cells with their explanations, in the matrix's order; out is the
// matrix's output directory (where the evidence files are listed from).
func (r Report) Reds(out string) []Red {
	var reds []Red
	for _, res := range r.Results {
		if res.Status != Failed {
			continue
		}
		red := Red{Result: res, Near: r.nearest(res)}
		if res.Evidence != "" {
			files, _ := filepath.Glob(filepath.Join(out, res.Evidence, "*"))
			for _, f := range files {
				red.Files = append(red.Files, filepath.ToSlash(filepath.Join(res.Evidence, filepath.Base(f))))
			}
			sort.Strings(red.Files)
		}
		reds = append(reds, red)
	}
	return reds
}

// nearest are the passing cells one axis from res on the grid, on the same cgroup hierarchy:
// the same kernel with another LXC, then the same LXC on another kernel.
func (r Report) nearest(res Result) []Near {
	if res.AxisKernel == "" || res.AxisLXC == "" {
		return nil
	}
	var out []Near
	for _, axis := range []string{"same kernel", "same LXC"} {
		for _, o := range r.Results {
			if o.Status != Passed || o.Cgroup != res.Cgroup {
				continue
			}
			share := o.AxisKernel == res.AxisKernel && o.AxisLXC != res.AxisLXC
			if axis == "same LXC" {
				share = o.AxisLXC == res.AxisLXC && o.AxisKernel != res.AxisKernel
			}
			if share {
				out = append(out, Near{Cell: o.Cell, Axis: axis, Differs: differs(res, o)})
			}
		}
	}
	return out
}

// differs lists what differs between two cells: userland, kernel and LXC (as both guests
// reported them, else as both cells asked), cgroup hierarchy.
func differs(a, b Result) []string {
	pick := func(ga, gb, xa, xb string) (string, string) {
		if ga != "" && gb != "" {
			return ga, gb
		}
		return xa, xb
	}
	ka, kb := pick(a.Kernel, b.Kernel, a.AxisKernel, b.AxisKernel)
	la, lb := pick(a.LXC, b.LXC, a.AxisLXC, b.AxisLXC)
	var out []string
	for _, d := range []struct{ what, a, b string }{
		{"userland", a.Userland, b.Userland},
		{"kernel", ka, kb},
		{"LXC", la, lb},
	} {
		if d.a != d.b {
			out = append(out, fmt.Sprintf("%s %s → %s", d.what, orDash(d.a), orDash(d.b)))
		}
	}
	// The facts both guests recorded that differ (kernel and LXC are said above).
	var keys []string
	for k, va := range a.Facts {
		if vb, ok := b.Facts[k]; ok && va != vb && k != "kernel" && k != "lxc" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %s → %s", k, orDash(a.Facts[k]), orDash(b.Facts[k])))
	}
	return out
}

// whyMarkdown is the summary's section on the failed cells: for each, the reason, what its
// logs say, the nearest passing cells and what differs, its evidence.
func (r Report) whyMarkdown(out string) string {
	reds := r.Reds(out)
	if len(reds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n**Why the failed cells failed**\n\n")
	for _, red := range reds {
		fmt.Fprintf(&b, "- **%s**", red.Cell)
		if red.AxisKernel != "" {
			fmt.Fprintf(&b, " (kernel %s, LXC %s, %s, cgroup %s)", red.AxisKernel, red.AxisLXC, red.Userland, red.Cgroup)
		}
		if red.Step != "" {
			fmt.Fprintf(&b, ": labctl up failed at its step %q", red.Step)
		}
		fmt.Fprintf(&b, ": %s\n", strings.ReplaceAll(red.Reason, "\n", " "))
		for _, w := range red.Why {
			fmt.Fprintf(&b, "  - %s. Seen in `%s`\n", w.Says, strings.ReplaceAll(w.Found, "`", "'"))
		}
		if len(red.Why) == 0 {
			b.WriteString("  - no known failure in its logs: read its run.log and evidence\n")
		}
		for _, n := range red.Near {
			fmt.Fprintf(&b, "  - passes with the %s: %s (%s)\n", n.Axis, n.Cell, strings.Join(n.Differs, ", "))
		}
		if red.AxisKernel != "" && len(red.Near) == 0 {
			b.WriteString("  - no passing cell shares its kernel or its LXC in this run\n")
		}
		if len(red.Files) > 0 {
			fmt.Fprintf(&b, "  - evidence: %s\n", strings.Join(red.Files, ", "))
		}
	}
	return b.String()
}
