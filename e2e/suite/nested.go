package suite

import (
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

func describeNested(s *spec.Spec, c spec.Container) {
	Describe(c.Name+", nested in "+c.Parent, Label(LevelNested), func() {
		attachEvidence(c.Name)
		var parent, t remote.Target
		BeforeAll(func() { parent, t = target(c.Parent), target(c.Name) })

		It("is RUNNING inside "+c.Parent, func(ctx SpecContext) {
			Expect(sh(ctx, parent, false, lxc.StateCommand(remote.Quote(c.Name)))).To(Equal("RUNNING"))
		}, SpecTimeout(time.Minute))

		It("runs a command", func(ctx SpecContext) {
			Expect(sh(ctx, t, false, "echo hello from $(hostname)")).To(Equal("hello from " + c.Name))
		}, SpecTimeout(time.Minute))

		nestedUIDs(s, c)

		It("runs under its parent's AppArmor profile (read from the VM)", func(ctx SpecContext) {
			want := wantProfile(s, &c)
			if want == "" {
				Skip("the VM's kernel has no AppArmor")
			}
			pids := payloadPIDs(ctx, c.Name)
			Expect(pids).NotTo(BeEmpty())
			p, err := strconv.Atoi(pids[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(profileOf(ctx, p)).To(Equal(want))
		}, SpecTimeout(time.Minute))

		It("can be stopped and started again", func(ctx SpecContext) {
			sh(ctx, parent, false, remote.Shf("lxc-stop -n %s -t 10 || lxc-stop -n %s -k", c.Name, c.Name))
			Expect(sh(ctx, parent, false, lxc.StateCommand(remote.Quote(c.Name)))).To(Equal("STOPPED"))
			sh(ctx, parent, false, remote.Shf("lxc-start -n %s -d && lxc-wait -n %s -s RUNNING -t 60", c.Name, c.Name))
			Expect(sh(ctx, t, false, "echo again")).To(Equal("again"))
			descendantsBack(ctx, s, c)
		}, SpecTimeout(5*time.Minute))

		if c.Nesting {
			It("lets its root run containers of its own with the lab's defaults: create, clone, start, attach, stop, destroy", Label(Slow), func(ctx SpecContext) {
				userContainers(ctx, s, &c)
			}, SpecTimeout(5*time.Minute))
		}
	})
}

// descendantsBack waits for the containers below c, stopped with it, to run again: those that
// autostart are started by LXC's service in their parent as it boots; the others are started
// here, parents first (the spec's order), so that the specs after this one find the lab whole.
func descendantsBack(ctx SpecContext, s *spec.Spec, c spec.Container) {
	GinkgoHelper()
	for _, d := range s.Containers {
		if d.Name == c.Name || !below(s, d, c.Name) {
			continue
		}
		p := target(d.Parent)
		state := lxc.StateCommand(remote.Quote(d.Name))
		if !d.Autostart {
			sh(ctx, p, false, remote.Shf("lxc-start -n %s -d && lxc-wait -n %s -s RUNNING -t 60", d.Name, d.Name))
		}
		Eventually(func() string {
			r, err := p.Run(ctx, remote.Cmd{Line: state})
			if err != nil {
				return err.Error()
			}
			return strings.TrimSpace(r.Stdout)
		}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(Equal("RUNNING"), "%s did not run again after %s was started again", d.Name, c.Name)
	}
}

// below reports whether container d is nested, at any depth, in the container called name.
func below(s *spec.Spec, d spec.Container, name string) bool {
	for k := s.Container(d.Parent); k != nil; k = s.Container(k.Parent) {
		if k.Name == name {
			return true
		}
	}
	return false
}

// nestedUIDs: every process of a nested container runs under a subordinate uid, seen from the
// VM.
func nestedUIDs(s *spec.Spec, c spec.Container) {
	It("runs its processes under subordinate uids, never 0, seen from the VM", func(ctx SpecContext) {
		pids := payloadPIDs(ctx, c.Name)
		Expect(pids).NotTo(BeEmpty(), "no process of %s found from the VM", c.Name)
		// One read of every process's uids; a process that exited meanwhile has no line.
		out := sh(ctx, vm, false, "for p in "+strings.Join(pids, " ")+"; do sed -n \"s/^Uid:/$p/p\" /proc/$p/status 2>/dev/null; done; true")
		checked := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			checked++
			for _, u := range f[1:] {
				n, err := strconv.Atoi(u)
				Expect(err).NotTo(HaveOccurred())
				Expect(n).To(BeNumerically(">=", s.IDMap.Start), "process %s of %s runs as uid %d on the VM", f[0], c.Name, n)
			}
		}
		// The container's own processes do not all exit between two commands: checking none
		// would prove nothing.
		Expect(checked).To(BeNumerically(">", 0), "every process of %s (%v) exited before its uids were read", c.Name, pids)
	}, SpecTimeout(time.Minute))
}
