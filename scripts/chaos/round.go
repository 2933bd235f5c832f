package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// roundResult is what one round did and found.
type roundResult struct {
	plan
	note      string   // what the fault did
	during    bool     // the fault fell while the verb ran
	verbCodes []int    // the verb's commands' exit codes
	hung      bool     // a command of the verb hung (killed after 15 minutes)
	converged bool     // the next up succeeded and the provision after it changed nothing
	recovered string   // how the soak got the lab back when it did not converge
	lost      []string // canaries gone
	leaked    []string // what was left behind
	took      time.Duration
}

func (r roundResult) ok() bool {
	return r.converged && !r.hung && len(r.lost) == 0 && len(r.leaked) == 0
}

// round runs one round: the scene, the verb with its fault, the convergence, the canaries, the
// leaks; it prints one line (and what failed).
func (s *soak) round(p plan) {
	start := time.Now()
	rr := roundResult{plan: p}
	note, undo := s.setScene(p)
	done := make(chan []result, 1)
	go func() { done <- s.runVerb(p) }()
	var res []result
	if !p.fault.before {
		select {
		case <-time.After(p.delay):
			rr.during = true
		case res = <-done:
		}
		note = s.inject(p)
	}
	if res == nil {
		res = <-done
	}
	undo()
	rr.note = note
	for _, r := range res {
		rr.verbCodes = append(rr.verbCodes, r.code)
		rr.hung = rr.hung || r.hung
	}
	s.converge(&rr)
	s.dropSnapshots()
	s.checkCanaries(&rr)
	rr.leaked = s.newLeaks()
	rr.took = time.Since(start)
	s.rounds = append(s.rounds, rr)
	s.printRound(rr)
}

var zeroChanged = regexp.MustCompile(`(^|[^0-9])0 changed, [0-9]+ ok`)

// converge runs what a user runs after a failure: `labctl up` (after a matrix run, `matrix
// clean` first), then `labctl provision`, which must change nothing. When up fails, the soak
// tries it once more, then destroy and up, to go on; the round counts as not converged.
func (s *soak) converge(rr *roundResult) {
	if rr.verb.name == "matrix" {
		s.run.run(s.matrixDir(), s.bin, "matrix", "clean", "-f", s.matrixFile())
	}
	up := s.labctl("up")
	if up.code == 0 {
		prov := s.labctl("provision")
		rr.converged = prov.code == 0 && zeroChanged.MatchString(prov.out)
		if !rr.converged {
			rr.recovered = "provision after up: " + prov.String() + "\n" + tail(prov.out, 8)
		}
		return
	}
	rr.recovered = "up failed: " + up.String() + "\n" + tail(up.out, 12)
	if again := s.labctl("up"); again.code == 0 {
		rr.recovered += "\n  a second up converged"
		return
	}
	s.labctl("destroy")
	if fresh := s.labctl("up"); fresh.code == 0 {
		rr.recovered += "\n  destroy and up brought a new lab"
		_ = s.writeCanaries(rr.round)
		rr.verb.resets = true
	}
}

// The canaries: a file at each level, synced, whose content names the round that wrote it.
var canaryPath = map[string]string{"host": "/var/tmp/labctl-chaos-canary", "box1": "/labctl-chaos-canary", "n1": "/labctl-chaos-canary"}

var levels = []string{"host", "box1", "n1"}

func (s *soak) writeCanaries(round int) error {
	s.canary = fmt.Sprintf("seed-%d-round-%d-%d", s.o.seed, round, time.Now().UnixNano())
	for _, l := range levels {
		r := s.labctl("exec", "--level", l, "--", "sh", "-c", fmt.Sprintf("echo %s > %s && sync", s.canary, canaryPath[l]))
		if r.code != 0 {
			return fmt.Errorf("writing the canary at %s: %s\n%s", l, r, tail(r.out, 5))
		}
	}
	return nil
}

// checkCanaries reads the canaries; a verb that resets the lab (reset, destroy then up) may
// lose them: they are written again.
func (s *soak) checkCanaries(rr *roundResult) {
	for _, l := range levels {
		r := s.labctl("exec", "--level", l, "--", "cat", canaryPath[l])
		if r.code != 0 || strings.TrimSpace(r.out) != s.canary {
			if !rr.verb.resets {
				rr.lost = append(rr.lost, fmt.Sprintf("%s: %s (%s)", l, trim(r.out, 80), r))
			}
		}
	}
	if rr.verb.resets || len(rr.lost) > 0 {
		if err := s.writeCanaries(rr.round); err != nil {
			rr.lost = append(rr.lost, err.Error())
		}
	}
}

func (s *soak) printRound(rr roundResult) {
	status := "ok"
	if !rr.ok() {
		status = "FAILED"
	}
	when := "after the verb"
	if rr.during {
		when = "during the verb"
	} else if rr.fault.before {
		when = "before the verb"
	}
	fmt.Printf("round %d %s: %s, fault %s (%s); verb exits %v; converged %v; lost %d; leaked %d; %.0fs\n",
		rr.round, status, rr.verb.name, rr.fault.name, when, rr.verbCodes, rr.converged, len(rr.lost), len(rr.leaked), rr.took.Seconds())
	fmt.Printf("  fault: %s\n", rr.note)
	if rr.recovered != "" {
		fmt.Printf("  %s\n", rr.recovered)
	}
	for _, x := range append(rr.lost, rr.leaked...) {
		fmt.Printf("  %s\n", x)
	}
	if !rr.ok() {
		fmt.Printf("  replay: make test-chaos SEED=%d FROM=%d ROUNDS=1\n", s.o.seed, rr.round)
	}
}
