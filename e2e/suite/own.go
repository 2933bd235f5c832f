package suite

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/e2e/labtest"
	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// userContainers is what a user of the lab does next with its defaults, at one level: on the
// VM as the lab user (parent nil: btrfs, unprivileged) or as root inside a container that
// nests: create a busybox container, start it, run a command in it, clone it as a snapshot,
// start and use the clone, stop and destroy both, and find nothing left behind.
func userContainers(ctx SpecContext, s *spec.Spec, parent *spec.Container) {
	GinkgoHelper()
	f := theLab.Facts
	var t remote.Target = vm
	lxc := func(tool string) string { return provision.UserLXC(f, tool) }
	backing, where := "btrfs", s.Btrfs.MountPoint
	if parent != nil {
		t = target(parent.Name)
		lxc = func(tool string) string { return tool }
		backing, where = "dir", `"$(lxc-config lxc.lxcpath)"`
	}
	a, b := "e2e-own-a", "e2e-own-b"
	clean := func(ctx context.Context) {
		for _, n := range []string{b, a} {
			_, _ = t.Run(ctx, remote.Cmd{Line: remote.Shf("lxc-stop -n %s -k 2>/dev/null; lxc-destroy -n %s 2>/dev/null; true", n, n)})
		}
	}
	clean(ctx)
	DeferCleanup(clean, NodeTimeout(2*time.Minute))

	sh(ctx, t, false, provision.CreateLine(f, a, backing, spec.Image{Type: "busybox"}))
	// On the VM the clone is a btrfs snapshot; inside a container a full copy (a snapshot of a
	// directory-backed container is an overlay mount, which a nested user namespace may not make).
	clone := remote.Shf("lxc-copy -n %s -N %s", a, b)
	if backing == "btrfs" {
		clone += " -s"
	}
	sh(ctx, t, false, clone)
	for _, n := range []string{a, b} {
		sh(ctx, t, false, lxc("lxc-start")+remote.Shf(" -n %s -d && lxc-wait -n %s -s RUNNING -t 60", n, n))
		Expect(sh(ctx, t, false, lxc("lxc-attach")+remote.Shf(" -n %s -- hostname", n))).To(Equal(n))
	}
	if backing == "btrfs" {
		Expect(sh(ctx, vm, true, remote.Shf("btrfs subvolume list %s", s.Btrfs.MountPoint))).To(MatchRegexp(`(?m) path `+b+`/rootfs$`), "the clone is not a btrfs snapshot")
	}
	for _, n := range []string{b, a} {
		sh(ctx, t, false, remote.Shf("lxc-stop -n %s -k && lxc-destroy -n %s", n, n))
	}
	Expect(sh(ctx, t, false, "ls -A "+where)).NotTo(ContainSubstring("e2e-own-"), "left under %s", where)
	if backing == "btrfs" {
		Expect(sh(ctx, vm, true, remote.Shf("btrfs subvolume list %s", s.Btrfs.MountPoint))).NotTo(ContainSubstring("e2e-own-"))
	}
}

// vagrantInLabDir runs plain vagrant in the lab's directory with the user's own environment
// (no VAGRANT_* variable of labctl's).
func vagrantInLabDir(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "vagrant", args...)
	cmd.Dir = theLab.Dir
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "VAGRANT_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// status is `labctl status --json`, read back.
type status struct {
	VM         string            `json:"vm"`
	Containers map[string]string `json:"containers"`
	Why        map[string]string `json:"why"`
}

func labctlStatus(ctx context.Context) status {
	GinkgoHelper()
	out, err := labctlOut(ctx, "status", "--json")
	Expect(err).NotTo(HaveOccurred(), "%s", out)
	var st status
	Expect(json.Unmarshal([]byte(out), &st)).To(Succeed(), "%s", out)
	return st
}

func labctlOut(ctx context.Context, args ...string) (string, error) {
	return labtest.Labctl(ctx, opts.Lab, args...)
}

func describeStatus(s *spec.Spec) {
	var parent, child string
	for _, c := range s.Containers {
		if c.Parent != "" && s.Container(c.Parent).Parent == "" {
			parent, child = c.Parent, c.Name
			break
		}
	}
	if parent == "" {
		return
	}
	Describe("status while "+parent+" is stopped", Label("status", Slow), func() {
		attachEvidence(parent)

		It("reports "+child+" as unknown, its parent stopped, and both running once provisioned again", func(ctx SpecContext) {
			stop := provision.UserLXC(theLab.Facts, "lxc-stop") + remote.Shf(" -n %s -t 30", parent)
			sh(ctx, vm, false, stop)
			st := labctlStatus(ctx)
			Expect(st.Containers[parent]).To(Equal("STOPPED"))
			Expect(st.Containers[child]).To(Equal("unknown"))
			Expect(st.Why[child]).To(ContainSubstring("parent " + parent + " is STOPPED"))
			out, err := labctlOut(ctx, "provision")
			Expect(err).NotTo(HaveOccurred(), "%s", out)
			st = labctlStatus(ctx)
			Expect(st.Containers[parent]).To(Equal("RUNNING"))
			Expect(st.Containers[child]).To(Equal("RUNNING"))
		}, SpecTimeout(5*time.Minute))
	})
}

func describeUserTest() {
	Describe("a user's own test", Label("labtest", Slow), func() {
		It("runs the README's example (e2e/labtest/example) against this lab", func(ctx SpecContext) {
			if opts.Source == "" {
				Skip("it is a plain `go test` in labctl's source tree, which `labctl test` does not need: `ginkgo ./e2e` in the repository runs it")
			}
			o := opts.Lab
			cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "TestMyLab", "./e2e/labtest/example")
			cmd.Dir = opts.Source
			cmd.Env = append(os.Environ(), "LABCTL_EXAMPLE_LAB=1", "LABCTL_FILE="+o.File, "LABCTL_PRESET="+o.Preset)
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
			Expect(string(out)).To(ContainSubstring("--- PASS: TestMyLab"))
		}, SpecTimeout(5*time.Minute))
	})
}

func describeReboot(s *spec.Spec) {
	var auto []spec.Container
	for _, c := range s.Containers {
		if c.Autostart {
			auto = append(auto, c)
		}
	}
	if len(auto) == 0 || s.Box.Release == "" {
		return
	}
	Describe("after a reboot of the VM", Label("reboot", Slow), func() {
		attachEvidence("host")

		It("comes back with the data disk mounted and the autostart containers running, without provisioning; provisioning then changes nothing", func(ctx SpecContext) {
			boot := func() string { return sh(ctx, vm, false, "cat /proc/sys/kernel/random/boot_id") }
			before := boot()
			// Detached, so that the command returns before the VM goes down.
			sh(ctx, vm, true, "nohup sh -c 'sleep 2; systemctl reboot' >/dev/null 2>&1 &")
			Eventually(func() string {
				r, err := vm.Run(ctx, remote.Cmd{Line: "cat /proc/sys/kernel/random/boot_id"})
				if err != nil || !r.OK() {
					return before
				}
				return strings.TrimSpace(r.Stdout)
			}).WithContext(ctx).WithTimeout(6*time.Minute).WithPolling(5*time.Second).ShouldNot(Equal(before), "the VM did not come back")
			// nofail: the mount is not ordered before SSH, so it may come a little later.
			Eventually(func() string {
				r, err := vm.Run(ctx, remote.Cmd{Line: remote.Shf("findmnt -n -o FSTYPE --mountpoint %s", s.Btrfs.MountPoint), Sudo: true})
				if err != nil {
					return err.Error()
				}
				return strings.TrimSpace(r.Stdout)
			}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(3*time.Second).Should(Equal("btrfs"), "the data disk was not mounted after the reboot")
			for _, c := range auto {
				parent := vm
				if c.Parent != "" {
					parent = target(c.Parent)
				}
				Eventually(func() string {
					r, err := parent.Run(ctx, remote.Cmd{Line: lxc.StateCommand(remote.Quote(c.Name))})
					if err != nil {
						return err.Error()
					}
					return strings.TrimSpace(r.Stdout)
				}).WithContext(ctx).WithTimeout(3*time.Minute).WithPolling(3*time.Second).Should(Equal("RUNNING"), "%s did not start by itself", c.Name)
			}
			out, err := labctlOut(ctx, "provision")
			Expect(err).NotTo(HaveOccurred(), "%s", out)
			Expect(out).To(ContainSubstring("\n0 changed, "), "provisioning after the reboot changed something:\n%s", out)
		}, SpecTimeout(12*time.Minute))
	})
}
