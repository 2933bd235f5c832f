package matrix

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/release"
)

// Host is what the matrix asks of the machine it plans or runs on; tests stand in for it.
type Host interface {
	// Has reports whether a tool is on PATH.
	Has(tool string) bool
	// BuildsBoxes says why labctl cannot build boxes here (nil: it can): root builds as
	// itself, a normal user in a user namespace over its subordinate ids.
	BuildsBoxes() error
	// Boxes are the Vagrant boxes the host has, by name.
	Boxes() map[string]bool
}

// ThisHost is the machine labctl runs on.
type ThisHost struct{ boxes map[string]bool }

// Has reports whether tool is on PATH.
func (*ThisHost) Has(tool string) bool { _, err := exec.LookPath(tool); return err == nil }

// BuildsBoxes says why labctl cannot build boxes here (host.InUserNS).
func (*ThisHost) BuildsBoxes() error { _, err := host.InUserNS(); return err }

// Boxes lists Vagrant's boxes (once: `vagrant box list` costs a second of Ruby).
func (h *ThisHost) Boxes() map[string]bool {
	if h.boxes != nil {
		return h.boxes
	}
	h.boxes = map[string]bool{}
	cmd := exec.Command("vagrant", "box", "list")
	cmd.Env = append(os.Environ(), "VAGRANT_HOME="+host.VagrantHome())
	out, _ := cmd.Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			h.boxes[f[0]] = true
		}
	}
	return h.boxes
}

// Needs is what a cell needs of the host, and whether this one has it.
type Needs struct {
	// What the cell needs, in words.
	What []string
	// Runnable: the host has all of it.
	Runnable bool
	// Reason says what is missing (and what to do) when it is not runnable.
	Reason string
	// Excluded: the cell is not run anywhere (Reason says why), whatever the host has.
	Excluded bool
}

// status is how a cell that does not run here is recorded: excluded, or skipped.
func (n Needs) status() string {
	if n.Excluded {
		return Excluded
	}
	return Skipped
}

// NeedsOf says what cell c needs and whether h has it.
func NeedsOf(c Cell, h Host) Needs {
	if c.Excluded != "" {
		return Needs{What: []string{"nothing: excluded"}, Reason: c.Excluded, Excluded: true}
	}
	s := c.Spec
	var n Needs
	var missing []string
	tools := func(what string, names ...string) {
		n.What = append(n.What, what)
		var lack []string
		for _, t := range names {
			if !h.Has(t) {
				lack = append(lack, t)
			}
		}
		if len(lack) > 0 {
			missing = append(missing, what+" ("+strings.Join(lack, ", ")+" not found)")
		}
	}
	p := s.ProviderInfo()
	tools(p.Needs, p.Tools...)
	if s.Box.Release != "" {
		rel, _ := release.Get(s.Box.Release)
		kernel, _ := rel.KernelOf(s.Box.Kernel)
		n.What = append(n.What, fmt.Sprintf("box %s built here (mmdebstrap; kernel %s from %s)", s.BoxName(), kernel, orRelease(s.Box.Kernel, rel.Name)))
		if !h.Has("mmdebstrap") {
			missing = append(missing, "mmdebstrap (not found)")
		}
		if err := h.BuildsBoxes(); err != nil {
			missing = append(missing, "a user namespace to build boxes in ("+err.Error()+")")
		}
	} else {
		n.What = append(n.What, fmt.Sprintf("the Vagrant box %q", s.Box.Name))
		// Without the provider there is no point asking Vagrant for its boxes.
		if len(missing) == 0 && !h.Boxes()[s.Box.Name] {
			missing = append(missing, fmt.Sprintf("the Vagrant box %q (not added: `vagrant box add %s`)", s.Box.Name, s.Box.Name))
		} else if len(missing) > 0 {
			missing = append(missing, fmt.Sprintf("the Vagrant box %q", s.Box.Name))
		}
	}
	n.Runnable = len(missing) == 0
	if !n.Runnable {
		n.Reason = "this host lacks " + strings.Join(missing, "; ")
		if p.Install != "" {
			n.Reason += ": " + p.Install
		}
	}
	return n
}

func orRelease(suite, rel string) string {
	if suite == "" {
		return rel
	}
	return suite
}
