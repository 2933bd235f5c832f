package lab

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// Level is one line of a lab's summary: a level, its name and what it is.
type Level struct {
	Level remote.Level
	Name  string
	// What says what the level is: the VM's kernel, LXC and data disk; a container's state,
	// and its init and uid_map (a container of the VM) or its parent.
	What string
}

// LevelsOf reads the lab level by level: the VM from the facts, then every container in spec
// order. The containers are asked at once (a container of the VM in two commands at once: its
// state, and its init's pid with that process's uid_map).
func LevelsOf(ctx context.Context, p *provision.Provisioner) ([]Level, error) {
	f := p.Facts
	levels := []Level{{Level: remote.LevelHost, Name: "vm",
		What: fmt.Sprintf("kernel %s, LXC %s, %s on data disk (btrfs)", f.Kernel, f.LXCVersion, p.Spec.Btrfs.MountPoint)}}
	targets := provision.Targets(p.Spec, p.VM, f)
	n := len(p.Spec.Containers)
	states, extras, errs := make([]string, n), make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i, c := range p.Spec.Containers {
		wg.Go(func() { states[i], errs[i] = p.State(ctx, c.Name) })
		if c.Parent != "" {
			extras[i] = ", inside " + c.Parent
			continue
		}
		wg.Go(func() {
			if init, err := p.InitOf(ctx, c.Name); err == nil {
				extras[i] = fmt.Sprintf(", init pid %d, uid_map %q", init.PID, strings.Join(strings.Fields(init.UIDMap), " "))
			}
		})
	}
	wg.Wait()
	for i, c := range p.Spec.Containers {
		if errs[i] != nil {
			return levels, errs[i]
		}
		levels = append(levels, Level{Level: targets[c.Name].Level(), Name: c.Name, What: StateOrAbsent(states[i]) + extras[i]})
	}
	return levels, nil
}

// StateOrAbsent names the state of a container that State found no trace of ("") absent.
func StateOrAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}
