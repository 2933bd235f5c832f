// Command chaos is labctl's seeded soak on a real lab (make test-chaos): each round runs an
// everyday verb (exec at each level, provision, up, status, a snapshot saved and restored,
// reset, halt then up, destroy then up, now and then a matrix cell) and injects one fault chosen
// and timed by the seed (labctl interrupted or killed, an agent killed on the host or in the
// guest, the guest's sshd restarted or its connections cut, libvirtd restarted, the guest
// crashed or rebooted, the lab's directory full, a stale lock, a damaged cached image or layer).
// After every round: `labctl up` converges, `labctl provision` then says 0 changed, the canary
// files written in the VM, box1 and n1 are there (unless the verb was a reset or a destroy), and
// nothing is left that should not be (processes, domains, volumes, snapshots, locks, sockets,
// temp files, on the host and in the guest). It prints a line per round and a table at the
// end; it exits 1 when a round lost a canary, leaked, did not converge or hung.
//
//	go run ./scripts/chaos -seed S -rounds N [-from R] [-verbs a,b] [-faults a,b] [-keep]
//
// -from R -rounds 1 replays round R of seed S (the same verb, fault and timing).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	seed                int64
	rounds, from        int
	bin, preset         string
	verbs, faults       string
	keep, keepOnFailure bool
	budget              time.Duration
}

func main() {
	var o options
	flag.Int64Var(&o.seed, "seed", 1, "the seed: every round's verb, fault and timing follow from it")
	flag.IntVar(&o.rounds, "rounds", 10, "how many rounds")
	flag.IntVar(&o.from, "from", 1, "the first round's number (replay round R: -from R -rounds 1)")
	flag.StringVar(&o.bin, "labctl", "bin/labctl", "the labctl binary")
	flag.StringVar(&o.preset, "preset", "bookworm", "the preset the soak's lab (named chaos) is made from")
	flag.StringVar(&o.verbs, "verbs", "", "only these verbs (comma-separated)")
	flag.StringVar(&o.faults, "faults", "", "only these faults (comma-separated)")
	flag.BoolVar(&o.keep, "keep", false, "keep the soak's lab at the end")
	flag.BoolVar(&o.keepOnFailure, "keep-on-failure", false, "keep the lab when a round failed")
	flag.DurationVar(&o.budget, "budget", 0, "start no round after this much time (0: no limit)")
	flag.Parse()
	s, err := newSoak(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	os.Exit(s.main())
}

func (s *soak) main() int {
	start := time.Now()
	fmt.Printf("chaos: seed %d, rounds %d..%d, lab %s (log %s)\n", s.o.seed, s.o.from, s.o.from+s.o.rounds-1, s.name, s.logPath)
	if err := s.setUp(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: setting up the soak's lab failed: %v (log %s)\n", err, s.logPath)
		s.tearDown(true)
		return 1
	}
	for r := s.o.from; r < s.o.from+s.o.rounds; r++ {
		if s.o.budget > 0 && time.Since(start) > s.o.budget {
			fmt.Printf("chaos: time budget %s spent: stopping before round %d\n", s.o.budget, r)
			break
		}
		s.round(choose(s.o.seed, r, split(s.o.verbs), split(s.o.faults), s.small))
	}
	ok := s.report(os.Stdout, time.Since(start))
	s.tearDown(!ok)
	if !ok {
		return 1
	}
	return 0
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// abs makes the binary's path absolute (the matrix verb runs in another directory).
func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
