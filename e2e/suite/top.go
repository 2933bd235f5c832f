package suite

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

func describeTop(s *spec.Spec, c spec.Container) {
	Describe(c.Name+", a container of the VM", Label(LevelUnpriv), func() {
		attachEvidence(c.Name)
		l := &level{}
		BeforeAll(func(ctx SpecContext) {
			l.t = target(c.Name)
			init, err := prov.InitOf(ctx, c.Name)
			Expect(err).NotTo(HaveOccurred())
			l.pid = init.PID
		}, NodeTimeout(time.Minute))
		topIdentity(s, c, l)
		if c.Image.Type == "local" {
			topConfined(s, c, l)
		}
		topAppArmor(s, c, l)
	})
}

// level is a container level as its specs reach it, set by its BeforeAll: its target and the
// VM's PID of its init.
type level struct {
	t   remote.Target
	pid int
}

// topIdentity: the container runs, in the subordinate range, on btrfs, on the bridge.
func topIdentity(s *spec.Spec, c spec.Container, l *level) {
	It("is RUNNING", func(ctx SpecContext) {
		Expect(sh(ctx, vm, false, lxc.StateCommand(remote.Quote(c.Name)))).To(Equal("RUNNING"))
	}, SpecTimeout(time.Minute))

	It("maps its root to the subordinate range (uid_map and gid_map read from the VM)", func(ctx SpecContext) {
		want := fmt.Sprintf("0 %d %d", s.IDMap.Start, s.IDMap.Count)
		for _, m := range []string{"uid_map", "gid_map"} {
			got := strings.Join(strings.Fields(sh(ctx, vm, false, fmt.Sprintf("cat /proc/%d/%s", l.pid, m))), " ")
			Expect(got).To(Equal(want), m)
		}
	}, SpecTimeout(time.Minute))

	if c.Backing == "btrfs" {
		It("has its rootfs on a btrfs subvolume under the mount point", func(ctx SpecContext) {
			list := sh(ctx, vm, true, remote.Shf("btrfs subvolume list %s", s.Btrfs.MountPoint))
			Expect(list).To(MatchRegexp(`(?m) path ` + c.Name + `/rootfs$`))
			sh(ctx, vm, true, remote.Shf("btrfs subvolume show %s", path.Join(s.ContainerDir(c.Name), "rootfs")))
		}, SpecTimeout(time.Minute))
	}

	It("has a veth on the bridge", func(ctx SpecContext) {
		Expect(sh(ctx, vm, false, remote.Shf("ip -o link show master %s", s.Network.Link))).To(ContainSubstring("veth"))
	}, SpecTimeout(time.Minute))
}

// topConfined: labctl's own image gets an address, and its root is confined: files it
// writes are the subordinate root's, and it cannot load a module, change a VM-wide sysctl or
// mount the data disk.
func topConfined(s *spec.Spec, c spec.Container, l *level) {
	It("has an address in the bridge's subnet, as the VM has it", func(ctx SpecContext) {
		_, bridge := addrOf(sh(ctx, vm, false, remote.Shf("ip -4 -o addr show dev %s", s.Network.Link)))
		ip, _ := addrOf(sh(ctx, l.t, false, "ip -4 -o addr show dev eth0 scope global"))
		Expect(bridge).NotTo(BeNil(), "%s has no IPv4 subnet", s.Network.Link)
		Expect(bridge.Contains(ip)).To(BeTrue(), "%s's address %s is not in %s's %s", c.Name, ip, s.Network.Link, bridge)
	}, SpecTimeout(time.Minute))

	It("writes files owned by the subordinate root on the VM", func(ctx SpecContext) {
		sh(ctx, l.t, false, "touch /root/labctl-e2e-owner")
		DeferCleanup(func(ctx SpecContext) { sh(ctx, l.t, false, "rm -f /root/labctl-e2e-owner") })
		got := sh(ctx, vm, true, remote.Shf("stat -c %%u:%%g %s", path.Join(s.ContainerDir(c.Name), "rootfs/root/labctl-e2e-owner")))
		Expect(got).To(Equal(fmt.Sprintf("%d:%d", s.IDMap.Start, s.IDMap.Start)))
	}, SpecTimeout(time.Minute))

	It("cannot load a kernel module", func(ctx SpecContext) {
		// A real module of the VM's kernel, handed to the container's root (in /root: its
		// /tmp may be a tmpfs of its own, as on trixie).
		mod := sh(ctx, vm, true, "modinfo -n dummy")
		Expect(sh(ctx, vm, false, "grep -c '^dummy ' /proc/modules || true")).To(Equal("0"), "the dummy module must not be loaded before the test")
		dest := path.Join(s.ContainerDir(c.Name), "rootfs/root", path.Base(mod))
		DeferCleanup(func(ctx SpecContext) { sh(ctx, vm, true, remote.Shf("rm -f %s", dest)) })
		sh(ctx, vm, true, remote.Shf("cp %s %s && chown %d:%d %s", mod, dest, s.IDMap.Start, s.IDMap.Start, dest))
		r := try(ctx, l.t, false, remote.Shf("insmod /root/%s", path.Base(mod)))
		Expect(r.ExitCode).NotTo(BeZero(), "root in %s loaded a kernel module", c.Name)
		Expect(r.Stderr + r.Stdout).To(ContainSubstring("not permitted"))
		Expect(sh(ctx, vm, false, "grep -c '^dummy ' /proc/modules || true")).To(Equal("0"))
	}, SpecTimeout(time.Minute))

	It("cannot change a VM-wide sysctl", func(ctx SpecContext) {
		before := sh(ctx, vm, false, "cat /proc/sys/vm/swappiness")
		next := "7"
		if before == next {
			next = "8"
		}
		r := try(ctx, l.t, false, "echo "+next+" > /proc/sys/vm/swappiness")
		Expect(r.ExitCode).NotTo(BeZero(), "root in %s wrote vm.swappiness", c.Name)
		Expect(sh(ctx, vm, false, "cat /proc/sys/vm/swappiness")).To(Equal(before))
	}, SpecTimeout(time.Minute))

	It("cannot mount the data disk", func(ctx SpecContext) {
		uuid := sh(ctx, vm, true, remote.Shf("findmnt -n -o UUID --mountpoint %s", s.Btrfs.MountPoint))
		r := try(ctx, l.t, false, remote.Shf("mkdir -p /root/disk && mount -t btrfs UUID=%s /root/disk", uuid))
		Expect(r.ExitCode).NotTo(BeZero(), "root in %s mounted the data disk", c.Name)
	}, SpecTimeout(time.Minute))
}

// topAppArmor: the profile the spec asks for, what it denies, and containers of the root's
// own where it nests.
func topAppArmor(s *spec.Spec, c spec.Container, l *level) {
	It("runs under the AppArmor profile its spec asks for (read from the VM)", func(ctx SpecContext) {
		want := wantProfile(s, &c)
		if want == "" {
			Skip("the VM's kernel has no AppArmor")
		}
		Expect(profileOf(ctx, l.pid)).To(Equal(want))
	}, SpecTimeout(time.Minute))

	if c.AppArmor != "unconfined" && c.Image.Type == "local" {
		It("is denied by its profile what the profile denies: remounting / read-only (container-base: deny mount options=(ro, remount) -> /)", func(ctx SpecContext) {
			if !theLab.Facts.AppArmor {
				Skip("the VM's kernel has no AppArmor")
			}
			profile := wantProfile(s, &c)
			count := func() int {
				out := sh(ctx, vm, true, "dmesg | grep -c 'apparmor=\"DENIED\" operation=\"mount\".* name=\"/\" .*flags=\"ro, remount' || true")
				n, err := strconv.Atoi(out)
				Expect(err).NotTo(HaveOccurred())
				return n
			}
			before := count()
			// In a mount namespace of its own, so that nothing else sees it if it passed.
			r := try(ctx, l.t, false, "unshare -m --propagation unchanged sh -c 'mount -o remount,ro /'")
			Expect(r.ExitCode).NotTo(BeZero(), "%s remounted / read-only", c.Name)
			if count() == before {
				// Seen on trixie (6.12): the kernel refuses the remount in the container's user
				// namespace before AppArmor is asked, so there is no denial to show.
				Skip("the kernel refused the remount before AppArmor decided (no audit record): " + strings.TrimSpace(r.Stderr))
			}
			Expect(sh(ctx, vm, true, "dmesg | grep 'apparmor=\"DENIED\" operation=\"mount\"' | tail -n 1")).To(ContainSubstring(`profile="` + profile + `"`))
		}, SpecTimeout(time.Minute))
	}

	if c.Nesting && c.Image.Type == "local" {
		It("lets its root run containers of its own with the lab's defaults: create, snapshot clone, start, attach, stop, destroy", Label(Slow), func(ctx SpecContext) {
			userContainers(ctx, s, &c)
		}, SpecTimeout(5*time.Minute))
	}
}
