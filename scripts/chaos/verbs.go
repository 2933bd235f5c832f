package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// runVerb runs the round's verb: its labctl commands in order, each one the fault's target
// while it runs. The cache-corrupt fault falls between destroy-up's destroy and its up.
func (s *soak) runVerb(p plan) []result {
	switch p.verb.name {
	case "exec":
		var rs []result
		for i, level := range p.levels {
			rs = append(rs, s.labctl("exec", "--level", level, "--", "sh", "-c", fmt.Sprintf("echo round %d step %d; uname -r >/dev/null", p.round, i)))
		}
		return rs
	case "snapshot":
		name := fmt.Sprintf("chaos-r%d", p.round)
		save := s.labctl("snapshot", "save", name)
		if save.code != 0 {
			return []result{save}
		}
		return []result{save, s.labctl("snapshot", "restore", name)}
	case "halt-up":
		return []result{s.labctl("halt"), s.labctl("up")}
	case "destroy-up":
		d := s.labctl("destroy")
		if p.fault.name == "cache-corrupt" {
			fmt.Fprintf(s.run.log, "# cache-corrupt: %s\n", s.corrupt(p.pick))
		}
		return []result{d, s.labctl("up")}
	case "matrix":
		return []result{s.run.run(s.matrixDir(), s.bin, "matrix", "run", "-f", s.matrixFile(), "--cells", "chaos-cell")}
	default: // provision, up, status, reset
		return []result{s.labctl(p.verb.name)}
	}
}

// matrixDir is where the matrix verb runs (its own tmp/matrix/); matrixFile its matrix: one
// cell of the soak's preset, named so that its lab is no other lab's.
func (s *soak) matrixDir() string { return filepath.Join(s.dir, "matrix") }

func (s *soak) matrixFile() string {
	f := filepath.Join(s.matrixDir(), "matrix.yaml")
	_ = os.MkdirAll(s.matrixDir(), 0o755)
	_ = os.WriteFile(f, []byte("cells:\n  - name: chaos-cell\n    preset: "+s.o.preset+"\n"), 0o644)
	return f
}

// dropSnapshots deletes the soak's own named snapshots (chaos-rN), once the lab converged: a
// `snapshot save` whose labctl was killed may still have made one (its vagrant goes on).
func (s *soak) dropSnapshots() {
	st := s.labState()
	if st.DomainUUID == "" {
		return
	}
	out, err := s.virsh("snapshot-list", st.DomainUUID, "--name")
	if err != nil {
		return
	}
	for _, name := range strings.Fields(out) {
		if !strings.HasPrefix(name, "chaos-r") {
			continue
		}
		if out, err := s.virsh("snapshot-delete", st.DomainUUID, name); err != nil {
			fmt.Fprintf(s.run.log, "# the soak's snapshot %s could not be deleted: %s\n", name, out)
		}
	}
}
