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
		}, SpecTimeout(2*time.Minute))
	})
}
