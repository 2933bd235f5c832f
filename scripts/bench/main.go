// Command bench measures labctl's loop on a ready lab, side by side with what a user would do
// instead (plain Vagrant), in one run: each pair's two sides alternate, so that whatever else
// the host does weighs on both. It prints a Markdown table of medians and ratios and writes
// every sample to tmp/bench/results.json. It never fails on a figure.
//
//	go run ./scripts/bench [-preset P] [-runs N] [-heavy] [-cold] [-labctl BIN]   (make bench)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/spec"
)

// Case is one measured command, with the command it is compared with (if any).
type Case struct {
	Name    string    `json:"name"`
	Labctl  []string  `json:"labctl"`
	Other   []string  `json:"other,omitempty"`
	Runs    int       `json:"runs"`
	Samples []float64 `json:"samples_s"`
	Others  []float64 `json:"other_samples_s,omitempty"`
	Median  float64   `json:"median_s"`
	OtherM  float64   `json:"other_median_s,omitempty"`
	// Ratio is other/labctl: how many times faster labctl is (0: no comparison).
	Ratio  float64  `json:"ratio,omitempty"`
	Failed []string `json:"failed,omitempty"`
	// Setup runs once, unmeasured, before the samples.
	Setup []string `json:"setup,omitempty"`
}

// Results is tmp/bench/results.json.
type Results struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	Lab     string `json:"lab"`
	Cases   []Case `json:"cases"`
}

// options are the bench's flags.
type options struct {
	preset, bin     string
	runs, heavyRuns int
	heavy, up, cold bool
	labctl, labDir  string
}

func main() {
	var o options
	flag.StringVar(&o.preset, "preset", "bookworm", "the lab's preset (its lab must be up, or -up)")
	flag.IntVar(&o.runs, "runs", 10, "runs of each light case (medians)")
	flag.IntVar(&o.heavyRuns, "heavy-runs", 3, "runs of each heavy case")
	flag.BoolVar(&o.heavy, "heavy", false, "also halt/up, reset and the e2e suite (minutes)")
	flag.BoolVar(&o.up, "up", false, "bring the lab up first")
	flag.BoolVar(&o.cold, "cold", false, "also a new lab: destroy, then up from its provisioned layer beside up from the box (--no-layer), and a reboot of the VM (minutes each)")
	flag.StringVar(&o.bin, "labctl", "bin/labctl", "the labctl binary")
	flag.Parse()
	var err error
	o.labctl, err = filepath.Abs(o.bin)
	check(err)
	if o.up {
		run(o.l("up"))
	}
	o.labDir, err = filepath.Abs(labdir.Of(".", o.preset))
	check(err)
	s, err := spec.Source{Preset: o.preset}.Resolve()
	check(err)
	vagrantEnv = append(os.Environ(), "VAGRANT_CWD="+o.labDir, "VAGRANT_HOME="+vagrantHome(o.labDir),
		"VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1", "VAGRANT_DEFAULT_PROVIDER="+s.ProviderFor())
	res := Results{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(o.labDir), Lab: o.preset}
	for _, c := range o.cases(s) {
		measure(c)
		res.Cases = append(res.Cases, *c)
	}
	check(os.MkdirAll("tmp/bench", 0o755))
	data, err := json.MarshalIndent(res, "", "  ")
	check(err)
	check(os.WriteFile("tmp/bench/results.json", append(data, '\n'), 0o644))
	fmt.Print(Table(res))
	fmt.Fprintln(os.Stderr, "bench: every sample in tmp/bench/results.json")
}

// l is a labctl command line on the bench's lab.
func (o options) l(args ...string) []string {
	return append(append([]string{o.labctl}, spec.Source{Preset: o.preset}.Args()...), args...)
}

// cases are what the bench measures, each beside what a user would do instead.
func (o options) cases(s *spec.Spec) []*Case {
	vg := func(args ...string) []string { return append([]string{"vagrant"}, args...) }
	cases := []*Case{
		{Name: "exec -- true (VM)", Labctl: o.l("exec", "--", "true"), Other: vg("ssh", "-c", "true"), Runs: o.runs},
		{Name: "exec --sudo -- true (VM, as root)", Labctl: o.l("exec", "--sudo", "--", "true"), Other: vg("ssh", "-c", "sudo -n true"), Runs: o.runs},
	}
	// Every level of the spec's deepest chain, entered as a user would with plain Vagrant: the
	// delegated scope's attach into the container of the VM, lxc-attach below.
	attach := ""
	for i, c := range deepest(s) {
		if i == 0 {
			attach = "lxc-unpriv-attach -n " + c.Name + " --"
		} else {
			attach += " lxc-attach -n " + c.Name + " --"
		}
		cases = append(cases, &Case{Name: "exec --level " + c.Name + " -- true", Labctl: o.l("exec", "--level", c.Name, "--", "true"), Other: vg("ssh", "-c", attach+" true"), Runs: o.runs})
	}
	cases = append(cases, []*Case{
		{Name: "status", Labctl: o.l("status"), Other: vg("status"), Runs: o.runs},
		{Name: "up (the lab is up)", Labctl: o.l("up"), Runs: o.runs},
		{Name: "provision again", Labctl: o.l("provision"), Runs: o.runs},
	}...)
	if o.cold {
		cases = append(cases, o.coldCases(s)...)
	}
	if !o.heavy {
		return cases
	}
	// The suite built into labctl, as a user runs it.
	suite := func(args ...string) []string {
		return o.l(append([]string{"test", "--label-filter", "!slow"}, args...)...)
	}
	return append(cases,
		&Case{Name: "reset", Labctl: o.l("reset"), Runs: o.heavyRuns},
		&Case{Name: "e2e, the specs not labelled slow, ready lab", Labctl: suite(), Runs: o.heavyRuns},
		&Case{Name: "e2e -reset, the specs not labelled slow", Labctl: suite("--reset"), Runs: o.heavyRuns},
		&Case{Name: "halt", Labctl: o.l("halt"), Runs: 1},
		&Case{Name: "up from halted", Labctl: o.l("up"), Runs: 1},
	)
}

// coldCases measure a new lab of the spec, the way a user makes one (destroy, up): from its
// provisioned layer beside from the box, alternately (the layer made first, unmeasured); and
// a reboot of the VM until its deepest container answers again.
func (o options) coldCases(s *spec.Spec) []*Case {
	level := "host"
	if chain := deepest(s); len(chain) > 0 {
		level = chain[len(chain)-1].Name
	}
	sh := func(line string) []string { return []string{"sh", "-c", line} }
	q := func(args []string) string { return strings.Join(args, " ") }
	destroyUp := func(flags ...string) string {
		return q(o.l("destroy")) + " && " + q(o.l(append([]string{"up"}, flags...)...))
	}
	reboot := q(o.l("exec", "--sudo", "--", "sh", "-c", "'nohup sh -c \"sleep 1; systemctl reboot\" >/dev/null 2>&1 &'")) +
		" && sleep 10 && until " + q(o.l("exec", "--level", level, "--", "true")) + " 2>/dev/null; do sleep 2; done"
	fromBox := []string{"--no-layer"}
	if help, _ := exec.Command(o.labctl, "up", "--help").Output(); !strings.Contains(string(help), "--no-layer") {
		fromBox = nil // a labctl from before layers: every new lab comes from its box
	}
	return []*Case{
		{Name: "a new lab: destroy, up from its layer (instead: up --no-layer, from the box)", Labctl: sh(destroyUp()), Other: sh(destroyUp(fromBox...)),
			Runs: o.heavyRuns, Setup: sh(destroyUp())},
		{Name: "reboot the VM until " + level + " answers", Labctl: sh(reboot), Runs: o.heavyRuns},
	}
}

// deepest is the spec's deepest container with its ancestors, the container of the VM first.
func deepest(s *spec.Spec) []spec.Container {
	var best []spec.Container
	for _, c := range s.Containers {
		var chain []spec.Container
		for k := s.Container(c.Name); k != nil && len(chain) <= len(s.Containers); k = s.Container(k.Parent) {
			chain = append([]spec.Container{*k}, chain...)
		}
		if len(chain) > len(best) {
			best = chain
		}
	}
	return best
}

// measure runs a case's two sides alternately, so that whatever else the host does weighs on
// both, and takes their medians.
func measure(c *Case) {
	fmt.Fprintf(os.Stderr, "bench: %s (%d runs)\n", c.Name, c.Runs)
	if c.Setup != nil {
		timed(c, c.Setup)
	}
	for i := 0; i < c.Runs; i++ {
		c.Samples = append(c.Samples, timed(c, c.Labctl))
		if c.Other != nil {
			c.Others = append(c.Others, timed(c, c.Other))
		}
	}
	c.Median = median(c.Samples)
	if c.Other != nil {
		c.OtherM = median(c.Others)
		c.Ratio = c.OtherM / c.Median
	}
}

// Table is the Markdown table the README carries.
func Table(r Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s, lab %s (medians):\n\n", r.Date, r.Machine, r.Lab)
	b.WriteString("| what | runs | labctl | instead | labctl is |\n|---|---|---|---|---|\n")
	for _, c := range r.Cases {
		other, ratio := "—", "—"
		if c.Other != nil {
			other = fmt.Sprintf("`%s` %s", strings.Join(c.Other, " "), secs(c.OtherM))
			ratio = fmt.Sprintf("%.1fx faster", c.Ratio)
		}
		note := ""
		if len(c.Failed) > 0 {
			note = fmt.Sprintf(" (%d runs failed)", len(c.Failed))
		}
		fmt.Fprintf(&b, "| %s | %d | %s%s | %s | %s |\n", c.Name, c.Runs, secs(c.Median), note, other, ratio)
	}
	return b.String()
}

func secs(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

var vagrantEnv []string

func timed(c *Case, argv []string) float64 {
	cmd := exec.Command(argv[0], argv[1:]...)
	if argv[0] == "vagrant" {
		cmd.Env = vagrantEnv
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start).Seconds()
	if err != nil {
		c.Failed = append(c.Failed, fmt.Sprintf("%s: %v: %s", strings.Join(argv, " "), err, host.LastLines(strings.TrimSpace(string(out)), 3)))
		fmt.Fprintf(os.Stderr, "bench: %s failed: %v\n%s\n", strings.Join(argv, " "), err, host.LastLines(strings.TrimSpace(string(out)), 3))
	}
	return d
}

func run(argv []string) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	check(cmd.Run())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// machine names the host and how the lab's VM runs (state.json's accelerator).
func machine(labDir string) string {
	var st struct {
		Accel string `json:"accel"`
	}
	if data, err := os.ReadFile(filepath.Join(labDir, labdir.State)); err == nil {
		_ = json.Unmarshal(data, &st)
	}
	return fmt.Sprintf("%s/%s, %d cores, VM accel %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), strings.ToUpper(st.Accel))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// vagrantHome is the VAGRANT_HOME labctl runs Vagrant with, read from outside as everything
// here is: the lab's rendered Vagrantfile names the box's key, which Vagrant keeps under it.
func vagrantHome(labDir string) string {
	vf, err := os.ReadFile(filepath.Join(labDir, labdir.Vagrantfile))
	check(err)
	m := regexp.MustCompile(`private_key_path = "(.*)/boxes/`).FindSubmatch(vf)
	if m == nil {
		check(fmt.Errorf("%s/Vagrantfile names no box key under a VAGRANT_HOME: is the lab one of a box labctl built?", labDir))
	}
	return string(m[1])
}
