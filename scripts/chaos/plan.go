package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// A verb is one everyday use of the lab that a round runs: the labctl commands it runs in
// order, how long it takes about on a ready lab under TCG (the fault falls in its first 80%),
// and whether it may lose the canaries (an explicit reset or destroy).
type verb struct {
	name   string
	weight int
	est    time.Duration
	resets bool
}

// verbs are the rounds' verbs, with how often the seed picks each.
var verbs = []verb{
	{name: "exec", weight: 14, est: 2 * time.Second},
	{name: "provision", weight: 12, est: 3 * time.Second},
	{name: "up", weight: 8, est: 4 * time.Second},
	{name: "status", weight: 6, est: time.Second},
	{name: "snapshot", weight: 6, est: 10 * time.Second},
	{name: "reset", weight: 5, est: 8 * time.Second, resets: true},
	{name: "halt-up", weight: 4, est: 70 * time.Second},
	{name: "destroy-up", weight: 2, est: 90 * time.Second, resets: true},
	{name: "matrix", weight: 1, est: 240 * time.Second},
}

// A fault is what a round injects while its verb runs (or, for the ones that set the scene,
// before it starts: a full disk, a stale lock, a damaged cache).
type fault struct {
	name   string
	weight int
	// before: injected before the verb starts, undone (a full disk) after it ends.
	before bool
	// root: needs root (a loop mount).
	root bool
}

var faults = []fault{
	{name: "sigint-labctl", weight: 10},
	{name: "sigkill-labctl", weight: 10},
	{name: "sigkill-host-agent", weight: 8},
	{name: "sigkill-guest-agent", weight: 8},
	{name: "sshd-restart", weight: 5},
	{name: "conn-cut", weight: 8},
	{name: "libvirtd-restart", weight: 5},
	{name: "guest-crash", weight: 5},
	{name: "guest-reboot", weight: 4},
	{name: "enospc", weight: 5, before: true, root: true},
	{name: "stale-lock", weight: 6, before: true},
	// Only with destroy-up: the cached image or layer the new VM would use is damaged
	// between the destroy and the up.
	{name: "cache-corrupt", weight: 0, before: true},
}

// plan is what one round does, all of it chosen by the seed and the round's number, so that
// `-seed S -from R -rounds 1` replays round R's choices.
type plan struct {
	round int
	verb  verb
	fault fault
	// delay: when the fault falls, after the verb started.
	delay time.Duration
	// pick: a number the fault uses to choose among its targets (which agent, image or layer;
	// restart libvirtd at once or leave it down for the next command).
	pick uint64
	// levels are the exec verb's levels, in order.
	levels []string
}

func (p plan) String() string {
	at := fmt.Sprintf("@%.1fs", p.delay.Seconds())
	if p.fault.before {
		at = " (set before)"
	}
	return fmt.Sprintf("verb=%s fault=%s%s", p.verb.name, p.fault.name, at)
}

// choose makes round r's plan for seed. only* narrow the choice (a replay of a kind); root
// says whether the faults that need root are possible.
func choose(seed int64, r int, onlyVerbs, onlyFaults []string, root bool) plan {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(r)))
	p := plan{round: r, pick: rng.Uint64()}
	p.verb = pick(rng, verbs, func(v verb) (int, bool) {
		return v.weight, len(onlyVerbs) == 0 || slices.Contains(onlyVerbs, v.name)
	})
	if p.verb.name == "destroy-up" && rng.IntN(2) == 0 && (len(onlyFaults) == 0 || slices.Contains(onlyFaults, "cache-corrupt")) {
		p.fault = faults[len(faults)-1]
	} else {
		p.fault = pick(rng, faults, func(f fault) (int, bool) {
			return f.weight, (root || !f.root) && (len(onlyFaults) == 0 || slices.Contains(onlyFaults, f.name))
		})
	}
	p.delay = time.Duration(rng.Int64N(int64(p.verb.est)*8/10 + 1))
	for range 6 {
		p.levels = append(p.levels, []string{"host", "box1", "n1"}[rng.IntN(3)])
	}
	return p
}

// pick draws one of xs by weight among those ok says may be drawn.
func pick[T any](rng *rand.Rand, xs []T, ok func(T) (int, bool)) T {
	total := 0
	for _, x := range xs {
		if w, yes := ok(x); yes {
			total += w
		}
	}
	if total == 0 {
		var zero T
		return zero
	}
	n := rng.IntN(total)
	for _, x := range xs {
		if w, yes := ok(x); yes {
			if n < w {
				return x
			}
			n -= w
		}
	}
	return xs[len(xs)-1]
}
