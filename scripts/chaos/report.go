package main

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// report prints the soak's table: rounds, each fault kind and verb with how often the fault
// fell during the verb and how many of its rounds converged, what was lost and leaked (both
// must be 0), the wall time, the seed and the failed rounds to replay. It reports whether every
// round was ok.
func (s *soak) report(w io.Writer, took time.Duration) bool {
	byFault, byVerb := map[string]*row{}, map[string]*row{}
	var lost, leaked, notConverged, hung int
	var failed []int
	for _, r := range s.rounds {
		for _, m := range []struct {
			rows map[string]*row
			key  string
		}{{byFault, r.fault.name}, {byVerb, r.verb.name}} {
			if m.rows[m.key] == nil {
				m.rows[m.key] = &row{}
			}
			x := m.rows[m.key]
			x.n++
			if r.during || r.fault.before {
				x.during++
			}
			if r.converged {
				x.converged++
			}
			if !r.ok() {
				x.failed++
			}
		}
		lost += len(r.lost)
		leaked += len(r.leaked)
		if !r.converged {
			notConverged++
		}
		if r.hung {
			hung++
		}
		if !r.ok() {
			failed = append(failed, r.round)
		}
	}
	fmt.Fprintf(w, "\n=== chaos soak: seed %d, %d rounds in %s\n", s.o.seed, len(s.rounds), took.Round(time.Second))
	printTable(w, "fault", byFault)
	printTable(w, "verb", byVerb)
	fmt.Fprintf(w, "rounds %d, converged %d, not converged %d, hung %d, lost %d (must be 0), leaked %d (must be 0)\n",
		len(s.rounds), len(s.rounds)-notConverged, notConverged, hung, lost, leaked)
	for _, r := range failed {
		fmt.Fprintf(w, "failed round %d: make test-chaos SEED=%d FROM=%d ROUNDS=1\n", r, s.o.seed, r)
	}
	return len(failed) == 0 && len(s.rounds) > 0
}

// row counts the rounds of one fault or verb.
type row struct{ n, during, converged, failed int }

func printTable(w io.Writer, title string, rows map[string]*row) {
	fmt.Fprintf(w, "| %-20s | rounds | hit (during/before the verb) | converged | failed |\n|---|---|---|---|---|\n", title)
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x := rows[k]
		fmt.Fprintf(w, "| %-20s | %6d | %28d | %9d | %6d |\n", k, x.n, x.during, x.converged, x.failed)
	}
	fmt.Fprintln(w)
}
