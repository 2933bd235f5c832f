package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// The levels a result counts specs by: the suite's labels level:host, level:unpriv,
// level:nested; specs without one count as "other".
var Levels = []string{"host", "unpriv", "nested", "other"}

// The report entries of the suite's BeforeSuite that name what the guest really ran.
const (
	EntryKernel = "guest kernel"
	EntryLXC    = "guest LXC"
	EntryUp     = "labctl up"
	// EntryFacts is the guest's cell facts (provision.CellFacts) as a JSON object.
	EntryFacts = "cell facts"
)

// Counts are specs by how they ended.
type Counts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

func (c *Counts) add(o Counts) {
	c.Passed += o.Passed
	c.Failed += o.Failed
	c.Skipped += o.Skipped
}

// Status of a cell.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
	// Excluded: a grid cell that is not run anywhere (an exclude entry, or a lab that cannot
	// exist); Reason says why.
	Excluded = "excluded"
)

// Result is what one cell came to; it is written as cells/<cell>/result.json.
type Result struct {
	Cell  string `json:"cell"`
	Order int    `json:"order"`
	// What the cell asked for: its preset, box, kernel source and constraints.
	Preset       string `json:"preset"`
	Box          string `json:"box"`
	KernelSource string `json:"kernel_source"`
	WantKernel   string `json:"want_kernel"`
	WantLXC      string `json:"want_lxc"`
	// What the guest really ran (from the suite's report).
	Kernel string `json:"kernel,omitempty"`
	LXC    string `json:"lxc,omitempty"`
	// Where the cell sits on the matrix's axes (cells whose box labctl builds): the userland,
	// the kernel and LXC versions, the cgroup hierarchy.
	Userland   string `json:"userland,omitempty"`
	AxisKernel string `json:"axis_kernel,omitempty"`
	AxisLXC    string `json:"axis_lxc,omitempty"`
	Cgroup     string `json:"cgroup,omitempty"`
	// Status is passed, failed, skipped or excluded; Reason says why it did not pass.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Why is what the failed cell's logs say about the failure (known failures, explain.go);
	// Evidence the directory, relative to the matrix's output, that keeps its lab's logs.
	Why      []Why  `json:"why,omitempty"`
	Evidence string `json:"evidence,omitempty"`
	// Step is the step of labctl up that failed, when the cell failed there.
	Step string `json:"step,omitempty"`
	// Facts are what the suite read of the guest (kernel options, syscalls, AppArmor, systemd,
	// cgroup, LXC): none when the cell failed before the suite reached the lab.
	Facts  map[string]string `json:"facts,omitempty"`
	Levels map[string]Counts `json:"levels,omitempty"`
	Total  Counts            `json:"total"`
	// Up is how long `labctl up` took; Suite the suite's own run time; Seconds the whole cell.
	Up      string    `json:"up,omitempty"`
	Suite   string    `json:"suite,omitempty"`
	Seconds float64   `json:"seconds"`
	Started time.Time `json:"started"`
	// Host names the machine that ran (or skipped) the cell.
	Host string `json:"host"`
}

// Duration is the cell's whole time.
func (r Result) Duration() time.Duration { return time.Duration(r.Seconds * float64(time.Second)) }

// newResult is a result for cell c with what it asked for filled in.
func newResult(c Cell, order int, machine string) Result {
	r := Result{Cell: c.Name, Order: order, Preset: c.Preset, Host: machine}
	r.Userland, r.AxisKernel, r.AxisLXC, r.Cgroup = c.Axes()
	s := c.Spec
	if s == nil {
		return r
	}
	r.KernelSource = s.Box.Kernel
	if r.KernelSource == "" && s.Box.Release != "" {
		r.KernelSource = s.Box.Release
	}
	r.Box, r.WantKernel, r.WantLXC = s.BoxName(), s.Kernel, s.LXC.Expect
	return r
}

// readSuite fills r from the Ginkgo JSON report the suite wrote: the specs counted by level,
// the guest's kernel and LXC, the suite's time. A report with no spec that ran is an error.
func (r *Result) readSuite(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the suite wrote no report (%w)", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return fmt.Errorf("the suite's report %s does not read: %w", path, err)
	}
	r.Levels = map[string]Counts{}
	r.Total = Counts{}
	var failures []string
	for _, rep := range reports {
		r.Suite = rep.RunTime.Round(time.Second).String()
		for _, sr := range rep.SpecReports {
			for _, e := range sr.ReportEntries {
				switch e.Name {
				case EntryKernel:
					r.Kernel = e.StringRepresentation()
				case EntryLXC:
					r.LXC = e.StringRepresentation()
				case EntryUp:
					r.Up = e.StringRepresentation()
				case EntryFacts:
					_ = json.Unmarshal([]byte(e.StringRepresentation()), &r.Facts)
				}
			}
			var c Counts
			switch {
			case sr.State.Is(types.SpecStateFailureStates):
				c.Failed = 1
				failures = append(failures, strings.TrimSpace(sr.FullText()+nodeKind(sr)))
			case sr.LeafNodeType != types.NodeTypeIt:
				continue
			case sr.State == types.SpecStatePassed:
				c.Passed = 1
			case sr.State.Is(types.SpecStateSkipped | types.SpecStatePending):
				c.Skipped = 1
			default:
				continue
			}
			lv := levelOf(sr.Labels())
			all := r.Levels[lv]
			all.add(c)
			r.Levels[lv] = all
			r.Total.add(c)
		}
	}
	switch {
	case len(failures) > 0:
		r.Status, r.Reason = Failed, strings.Join(failures, "; ")
	case r.Total.Passed == 0:
		r.Status, r.Reason = Failed, "no spec passed"
	default:
		r.Status = Passed
	}
	return nil
}

// nodeKind names a failed setup node (BeforeSuite, a cleanup) that is not a spec.
func nodeKind(sr types.SpecReport) string {
	if sr.LeafNodeType == types.NodeTypeIt {
		return ""
	}
	return " [" + sr.LeafNodeType.String() + "]"
}

func levelOf(labels []string) string {
	for _, l := range labels {
		if lv, ok := strings.CutPrefix(l, "level:"); ok {
			return lv
		}
	}
	return "other"
}

// write saves the result as dir/result.json.
func (r Result) write(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "result.json"), append(data, '\n'), 0o644)
}

// ReadResults reads every cells/<cell>/result.json under out, in the matrix's order.
func ReadResults(out string) ([]Result, error) {
	files, err := filepath.Glob(filepath.Join(out, "cells", "*", "result.json"))
	if err != nil {
		return nil, err
	}
	var rs []Result
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if r.Cell != filepath.Base(filepath.Dir(f)) {
			return nil, fmt.Errorf("%s holds cell %q: a cell's result lives in cells/<cell>/", f, r.Cell)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, errors.New("no cell results under " + filepath.Join(out, "cells") + ": run `labctl matrix run`, or merge results made elsewhere with `labctl matrix merge DIR...`")
	}
	sortResults(rs)
	return rs, nil
}

func sortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Order != rs[j].Order {
			return rs[i].Order < rs[j].Order
		}
		return rs[i].Cell < rs[j].Cell
	})
}
