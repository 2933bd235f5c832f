package suite

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// The whole suite is one Ordered container, built from the lab's spec: the VM, then every
// container in spec order (its level is its depth), then a user's own test, provisioning
// again, status while a parent is stopped, and a reboot (they stop things, so they come
// last). A failed spec does not skip the rest (ContinueOnFailure): each level reports.
func describeLab(s *spec.Spec) {
	Describe("the lab", Ordered, ContinueOnFailure, func() { describeLevels(s) })
}

// describeLevels declares the specs of the whole lab, in order.
func describeLevels(s *spec.Spec) {
	describeVM(s)
	for i := range s.Containers {
		c := s.Containers[i]
		if c.Parent == "" {
			describeTop(s, c)
		} else {
			describeNested(s, c)
		}
	}
	describeUserTest()
	describeProvisionAgain()
	describeStatus(s)
	describeReboot(s)
}

func describeVM(s *spec.Spec) {
	Describe("the VM", Label(LevelHost), func() {
		attachEvidence("host")
		vmVersions(s)
		vmDisk(s)
		vmUser(s)
	})
}

// vmVersions: the kernel and LXC the spec asks for, on a cgroup hierarchy LXC supports.
func vmVersions(s *spec.Spec) {
	It("runs a kernel that satisfies the spec", func(ctx SpecContext) {
		if s.Kernel == "" {
			Skip("the spec sets no kernel constraint")
		}
		kv, err := theLab.Facts.KernelVersion()
		Expect(err).NotTo(HaveOccurred())
		c, err := version.NewConstraint(s.Kernel)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Check(kv)).To(BeTrue(), "kernel %s (%s) does not satisfy %q", theLab.Facts.Kernel, kv, s.Kernel)
	}, SpecTimeout(time.Minute))

	It("has the LXC version the spec expects", func(ctx SpecContext) {
		if s.LXC.Expect == "" {
			Skip("the spec sets no lxc.expect")
		}
		v := theLab.Facts.LXC()
		Expect(v).NotTo(BeNil(), "the guest has no LXC labctl knows: %q", theLab.Facts.LXCVersion)
		c, err := version.NewConstraint(s.LXC.Expect)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Check(v.Version)).To(BeTrue(), "LXC %s does not satisfy lxc.expect %q", theLab.Facts.LXCVersion, s.LXC.Expect)
	}, SpecTimeout(time.Minute))

	// Version-dependent: decided by the LXC the guest reports, not by the preset.
	It("runs LXC on a cgroup hierarchy it supports", func(ctx SpecContext) {
		v := theLab.Facts.LXC()
		Expect(v).NotTo(BeNil(), "the guest has no LXC labctl knows: %q", theLab.Facts.LXCVersion)
		if !v.Cgroup2Only() {
			Skip(fmt.Sprintf("LXC %s runs on cgroup v1 and v2 alike (only 7.0 and later need v2)", theLab.Facts.LXCVersion))
		}
		Expect(sh(ctx, vm, false, "stat -f -c %T /sys/fs/cgroup")).To(Equal("cgroup2fs"), "LXC %s needs the unified cgroup hierarchy", theLab.Facts.LXCVersion)
	}, SpecTimeout(time.Minute))

	It("boots on the cgroup hierarchy the lab asks for (box.cgroup)", func(ctx SpecContext) {
		if s.Box.Release == "" {
			Skip("the box is not one labctl builds: it boots on its own hierarchy")
		}
		want := "cgroup2fs" // v2: the unified hierarchy is /sys/fs/cgroup
		if s.Box.Cgroup == "v1" {
			want = "tmpfs" // v1: a tmpfs of one mount per controller
		}
		Expect(sh(ctx, vm, false, "stat -f -c %T /sys/fs/cgroup")).To(Equal(want), "box.cgroup is %q", s.Box.Cgroup)
	}, SpecTimeout(time.Minute))
}

// vmDisk: the btrfs data disk, mounted from one fstab entry and given to the lab user.
func vmDisk(s *spec.Spec) {
	mp := s.Btrfs.MountPoint
	It("mounts the btrfs data disk at the mount point from one fstab entry", func(ctx SpecContext) {
		f := strings.Fields(sh(ctx, vm, true, remote.Shf("findmnt -n -o FSTYPE,UUID,SOURCE,OPTIONS --mountpoint %s", mp)))
		Expect(f).To(HaveLen(4))
		Expect(f[0]).To(Equal("btrfs"))
		for _, o := range s.Btrfs.Options {
			if !provision.FstabOnly(o) {
				Expect("," + f[3] + ",").To(ContainSubstring("," + o + ","))
			}
		}
		fstab := sh(ctx, vm, false, "cat /etc/fstab")
		ref := "UUID=" + f[1]
		if s.Btrfs.FstabBy == "device" {
			ref = s.Disk.GuestDevice
		}
		entry := fmt.Sprintf("%s %s btrfs ", ref, mp)
		Expect(strings.Count(fstab, entry)).To(Equal(1), "want exactly one fstab entry %q in:\n%s", entry, fstab)
	}, SpecTimeout(time.Minute))

	It("gives the data disk to the lab user", func(ctx SpecContext) {
		Expect(sh(ctx, vm, true, remote.Shf("stat -c %%U:%%G %s", mp))).To(Equal(s.User + ":" + s.User))
	}, SpecTimeout(time.Minute))

	It("mounts the data disk again after unmount + mount -a", func(ctx SpecContext) {
		// In a private mount namespace, so that the running containers keep their disk.
		out := sh(ctx, vm, true, remote.Shf("unshare -m sh -c 'umount -l %s && ! mountpoint -q %s && mount -a && findmnt -n -o FSTYPE %s'", mp, mp, mp))
		Expect(out).To(Equal("btrfs"))
	}, SpecTimeout(time.Minute))

}

// vmUser: the lab user's ids, LXC defaults and veths; its own containers; plain Vagrant.
func vmUser(s *spec.Spec) {
	mp := s.Btrfs.MountPoint
	It("has exactly one subuid and one subgid entry for the user", func(ctx SpecContext) {
		want := fmt.Sprintf("%s:%d:%d", s.User, s.IDMap.Start, s.IDMap.Count)
		for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
			lines := strings.Split(sh(ctx, vm, false, remote.Shf("grep '^%s:' %s || true", s.User, f)), "\n")
			Expect(lines).To(Equal([]string{want}), "%s", f)
		}
	}, SpecTimeout(time.Minute))

	It("makes the user's lxc.lxcpath the mount point", func(ctx SpecContext) {
		Expect(sh(ctx, vm, false, "lxc-config lxc.lxcpath")).To(Equal(mp))
	}, SpecTimeout(time.Minute))

	It("lets the user create veths on the bridge", func(ctx SpecContext) {
		want := fmt.Sprintf("%s %s %s %d", s.User, s.Network.Type, s.Network.Link, s.Network.MaxVeths)
		Expect(strings.Split(sh(ctx, vm, false, "cat /etc/lxc/lxc-usernet"), "\n")).To(ContainElement(want))
	}, SpecTimeout(time.Minute))

	It("lets the user run containers of their own with the lab's defaults: create, snapshot clone, start, attach, stop, destroy", Label(Slow), func(ctx SpecContext) {
		userContainers(ctx, s, nil)
	}, SpecTimeout(5*time.Minute))

	It("answers plain `vagrant ssh -c` in the lab directory, with the user's own environment", func(ctx SpecContext) {
		out, err := vagrantInLabDir(ctx, "ssh", "-c", "id -un")
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		Expect(strings.TrimSpace(lastLine(out))).To(Equal(s.User))
	}, SpecTimeout(2*time.Minute))
}

func describeProvisionAgain() {
	Describe("provisioning again", Label("provision"), func() {
		attachEvidence("host")

		It("changes nothing on a finished lab and leaves every managed file byte-identical", func(ctx SpecContext) {
			files, err := prov.ManagedFiles(ctx)
			Expect(err).NotTo(HaveOccurred())
			before := checksums(ctx, files)
			sum, err := prov.Run(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(sum.Changed).To(BeZero(), "a second provision changed: %v", sum.Changes)
			Expect(checksums(ctx, files)).To(Equal(before))
		}, SpecTimeout(10*time.Minute))
	})
}

// checksums reads the sha256 of each managed file on its target, one command per target.
func checksums(ctx SpecContext, files []provision.ManagedFile) map[string]string {
	GinkgoHelper()
	var targets []remote.Target
	paths := map[string][]string{}
	for _, f := range files {
		if paths[f.Target.Name()] == nil {
			targets = append(targets, f.Target)
		}
		paths[f.Target.Name()] = append(paths[f.Target.Name()], f.Path)
	}
	out := map[string]string{}
	for _, t := range targets {
		ps := paths[t.Name()]
		lines := strings.Split(strings.TrimSpace(sh(ctx, t, true, remote.Join(append([]string{"sha256sum", "--"}, ps...)...))), "\n")
		Expect(lines).To(HaveLen(len(ps)), "sha256sum on %s: one line per file", t.Name())
		for i, p := range ps {
			out[t.Name()+":"+p] = lines[i]
		}
	}
	return out
}

// addrOf reads the first "inet A/N" of `ip -4 -o addr` output.
func addrOf(out string) (net.IP, *net.IPNet) {
	f := strings.Fields(out)
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			ip, n, err := net.ParseCIDR(f[i+1])
			if err == nil {
				return ip, n
			}
		}
	}
	return nil, nil
}

// payloadPIDs are the VM's PIDs of a container's processes: those in its cgroup, whichever
// pid namespace they show in.
func payloadPIDs(ctx SpecContext, name string) []string {
	GinkgoHelper()
	return strings.Fields(sh(ctx, vm, false, remote.Shf("grep -l 'lxc.payload.%s' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 || true", name)))
}

// profileOf is the AppArmor profile of a VM process, without its mode.
func profileOf(ctx SpecContext, pid int) string {
	GinkgoHelper()
	label := sh(ctx, vm, true, fmt.Sprintf("cat /proc/%d/attr/current", pid))
	p, _, _ := strings.Cut(label, " (")
	return p
}

// wantProfile is the profile a container of the spec runs under, as labctl configures it
// (see lxc.NestingLines): unconfined when asked; a container of the VM that nests, the
// with-nesting profile; one that does not, LXC's default for cgroup namespaces; a nested
// container, its parent's. Empty when the VM's kernel has no AppArmor.
func wantProfile(s *spec.Spec, c *spec.Container) string {
	if !theLab.Facts.AppArmor {
		return ""
	}
	if c.Parent != "" {
		return wantProfile(s, s.Container(c.Parent))
	}
	switch {
	case c.AppArmor == "unconfined":
		return "unconfined"
	case c.Nesting:
		return "lxc-container-default-with-nesting"
	default:
		return "lxc-container-default-cgns"
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
