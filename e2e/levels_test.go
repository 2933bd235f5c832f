package e2e

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

// The whole suite is one Ordered container, built from the lab's spec: the VM, then every
// container in spec order (its level is its depth), then a user's own test, provisioning
// again, status while a parent is stopped, and a reboot (they stop things, so they come
// last). A failed spec does not skip the rest (ContinueOnFailure): each level reports.
var _ = Describe("the lab", Ordered, ContinueOnFailure, func() {
	s := specAtBuild()
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
})

func describeVM(s *spec.Spec) {
	Describe("the VM", Label(LevelHost), func() {
		attachEvidence("host")
		mp := s.Btrfs.MountPoint

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
	})
}

func describeTop(s *spec.Spec, c spec.Container) {
	Describe(c.Name+", a container of the VM", Label(LevelUnpriv), func() {
		attachEvidence(c.Name)
		var t remote.Target
		var pid int
		BeforeAll(func(ctx SpecContext) {
			t = target(c.Name)
			init, err := prov.InitOf(ctx, c.Name)
			Expect(err).NotTo(HaveOccurred())
			pid = init.PID
		}, NodeTimeout(time.Minute))

		It("is RUNNING", func(ctx SpecContext) {
			Expect(sh(ctx, vm, false, lxc.StateCommand(remote.Quote(c.Name)))).To(Equal("RUNNING"))
		}, SpecTimeout(time.Minute))

		It("maps its root to the subordinate range (uid_map and gid_map read from the VM)", func(ctx SpecContext) {
			want := fmt.Sprintf("0 %d %d", s.IDMap.Start, s.IDMap.Count)
			for _, m := range []string{"uid_map", "gid_map"} {
				got := strings.Join(strings.Fields(sh(ctx, vm, false, fmt.Sprintf("cat /proc/%d/%s", pid, m))), " ")
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

		if c.Image.Type == "local" {
			It("has an address in the bridge's subnet, as the VM has it", func(ctx SpecContext) {
				_, bridge := addrOf(sh(ctx, vm, false, remote.Shf("ip -4 -o addr show dev %s", s.Network.Link)))
				ip, _ := addrOf(sh(ctx, t, false, "ip -4 -o addr show dev eth0 scope global"))
				Expect(bridge).NotTo(BeNil(), "%s has no IPv4 subnet", s.Network.Link)
				Expect(bridge.Contains(ip)).To(BeTrue(), "%s's address %s is not in %s's %s", c.Name, ip, s.Network.Link, bridge)
			}, SpecTimeout(time.Minute))

			It("writes files owned by the subordinate root on the VM", func(ctx SpecContext) {
				sh(ctx, t, false, "touch /root/labctl-e2e-owner")
				DeferCleanup(func(ctx SpecContext) { sh(ctx, t, false, "rm -f /root/labctl-e2e-owner") })
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
				r := try(ctx, t, false, remote.Shf("insmod /root/%s", path.Base(mod)))
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
				r := try(ctx, t, false, "echo "+next+" > /proc/sys/vm/swappiness")
				Expect(r.ExitCode).NotTo(BeZero(), "root in %s wrote vm.swappiness", c.Name)
				Expect(sh(ctx, vm, false, "cat /proc/sys/vm/swappiness")).To(Equal(before))
			}, SpecTimeout(time.Minute))

			It("cannot mount the data disk", func(ctx SpecContext) {
				uuid := sh(ctx, vm, true, remote.Shf("findmnt -n -o UUID --mountpoint %s", s.Btrfs.MountPoint))
				r := try(ctx, t, false, remote.Shf("mkdir -p /root/disk && mount -t btrfs UUID=%s /root/disk", uuid))
				Expect(r.ExitCode).NotTo(BeZero(), "root in %s mounted the data disk", c.Name)
			}, SpecTimeout(time.Minute))
		}

		It("runs under the AppArmor profile its spec asks for (read from the VM)", func(ctx SpecContext) {
			want := wantProfile(s, &c)
			if want == "" {
				Skip("the VM's kernel has no AppArmor")
			}
			Expect(profileOf(ctx, pid)).To(Equal(want))
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
				r := try(ctx, t, false, "unshare -m --propagation unchanged sh -c 'mount -o remount,ro /'")
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
	})
}

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
