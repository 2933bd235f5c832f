package e2e

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

var _ = Describe("the VM", Ordered, Label(LevelHost), func() {
	attachEvidence("host")
	var mp string
	BeforeAll(func() { mp = theSpec.Btrfs.MountPoint })

	It("runs a kernel that satisfies the spec", func(ctx SpecContext) {
		kv, err := prov.Facts.KernelVersion()
		Expect(err).NotTo(HaveOccurred())
		c, err := version.NewConstraint(theSpec.Kernel)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Check(kv)).To(BeTrue(), "kernel %s (%s) does not satisfy %q", prov.Facts.Kernel, kv, theSpec.Kernel)
	}, SpecTimeout(time.Minute))

	It("has the LXC version the spec expects", func(ctx SpecContext) {
		got := sh(ctx, vm, false, "lxc-create --version")
		v, err := version.NewVersion(got)
		Expect(err).NotTo(HaveOccurred())
		c, err := version.NewConstraint(theSpec.LXC.Expect)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Check(v.Core())).To(BeTrue(), "LXC %s does not satisfy lxc.expect %q", got, theSpec.LXC.Expect)
	}, SpecTimeout(time.Minute))

	It("mounts the btrfs data disk at the mount point from an fstab entry by UUID", func(ctx SpecContext) {
		f := strings.Fields(sh(ctx, vm, true, remote.Shf("findmnt -n -o FSTYPE,UUID,OPTIONS --mountpoint %s", mp)))
		Expect(f).To(HaveLen(3))
		Expect(f[0]).To(Equal("btrfs"))
		Expect(f[2]).To(ContainSubstring("user_subvol_rm_allowed"))
		fstab := sh(ctx, vm, false, "cat /etc/fstab")
		entry := fmt.Sprintf("UUID=%s %s btrfs ", f[1], mp)
		Expect(strings.Count(fstab, entry)).To(Equal(1), "want exactly one fstab entry %q in:\n%s", entry, fstab)
	}, SpecTimeout(time.Minute))

	It("gives the data disk to the lab user", func(ctx SpecContext) {
		Expect(sh(ctx, vm, true, remote.Shf("stat -c %%U:%%G %s", mp))).To(Equal(theSpec.User + ":" + theSpec.User))
	}, SpecTimeout(time.Minute))

	It("mounts the data disk again after unmount + mount -a", func(ctx SpecContext) {
		// In a private mount namespace, so that the running containers keep their disk.
		out := sh(ctx, vm, true, remote.Shf("unshare -m sh -c 'umount -l %s && ! mountpoint -q %s && mount -a && findmnt -n -o FSTYPE %s'", mp, mp, mp))
		Expect(out).To(Equal("btrfs"))
	}, SpecTimeout(time.Minute))

	It("has exactly one subuid and one subgid entry for the user", func(ctx SpecContext) {
		want := fmt.Sprintf("%s:%d:%d", theSpec.User, theSpec.IDMap.Start, theSpec.IDMap.Count)
		for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
			lines := strings.Split(sh(ctx, vm, false, remote.Shf("grep '^%s:' %s || true", theSpec.User, f)), "\n")
			Expect(lines).To(Equal([]string{want}), "%s", f)
		}
	}, SpecTimeout(time.Minute))

	It("makes the user's lxc.lxcpath the mount point", func(ctx SpecContext) {
		Expect(sh(ctx, vm, false, "lxc-config lxc.lxcpath")).To(Equal(mp))
	}, SpecTimeout(time.Minute))

	It("lets the user create veths on the bridge", func(ctx SpecContext) {
		want := fmt.Sprintf("%s %s %s %d", theSpec.User, theSpec.Network.Type, theSpec.Network.Link, theSpec.Network.MaxVeths)
		Expect(strings.Split(sh(ctx, vm, false, "cat /etc/lxc/lxc-usernet"), "\n")).To(ContainElement(want))
	}, SpecTimeout(time.Minute))
})

var _ = Describe("box1, the unprivileged container", Ordered, Label(LevelUnpriv), func() {
	attachEvidence("box1")
	var box1 remote.Target
	var pid int
	BeforeAll(func(ctx SpecContext) {
		box1 = targets["box1"]
		var err error
		pid, err = prov.InitPID(ctx, "box1")
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(time.Minute))

	It("is RUNNING", func(ctx SpecContext) {
		Expect(sh(ctx, vm, false, "lxc-info -n box1 -s -H")).To(Equal("RUNNING"))
	}, SpecTimeout(time.Minute))

	It("maps its root to the subordinate range (uid_map and gid_map read from the VM)", func(ctx SpecContext) {
		want := fmt.Sprintf("0 %d %d", theSpec.IDMap.Start, theSpec.IDMap.Count)
		for _, m := range []string{"uid_map", "gid_map"} {
			got := strings.Join(strings.Fields(sh(ctx, vm, false, fmt.Sprintf("cat /proc/%d/%s", pid, m))), " ")
			Expect(got).To(Equal(want), m)
		}
	}, SpecTimeout(time.Minute))

	It("has its rootfs on a btrfs subvolume under the mount point", func(ctx SpecContext) {
		list := sh(ctx, vm, true, remote.Shf("btrfs subvolume list %s", theSpec.Btrfs.MountPoint))
		Expect(list).To(MatchRegexp(`(?m) path box1/rootfs$`))
		sh(ctx, vm, true, remote.Shf("btrfs subvolume show %s", path.Join(theSpec.Btrfs.MountPoint, "box1/rootfs")))
	}, SpecTimeout(time.Minute))

	It("has a veth on the bridge and an address", func(ctx SpecContext) {
		Expect(sh(ctx, vm, false, remote.Shf("ip -o link show master %s", theSpec.Network.Link))).To(ContainSubstring("veth"))
		Expect(sh(ctx, box1, false, "ip -4 -o addr show dev eth0 scope global")).To(MatchRegexp(`inet 10\.0\.3\.\d+/24`))
	}, SpecTimeout(time.Minute))

	It("writes files owned by the subordinate root on the VM", func(ctx SpecContext) {
		sh(ctx, box1, false, "touch /root/labctl-e2e-owner")
		DeferCleanup(func(ctx SpecContext) { sh(ctx, box1, false, "rm -f /root/labctl-e2e-owner") })
		got := sh(ctx, vm, true, remote.Shf("stat -c %%u:%%g %s", path.Join(theSpec.Btrfs.MountPoint, "box1/rootfs/root/labctl-e2e-owner")))
		Expect(got).To(Equal(fmt.Sprintf("%d:%d", theSpec.IDMap.Start, theSpec.IDMap.Start)))
	}, SpecTimeout(time.Minute))

	It("cannot load a kernel module", func(ctx SpecContext) {
		// A real module of the VM's kernel, handed to box1's root (in /root: box1's /tmp may be
		// a tmpfs of its own, as on trixie, hiding what the VM puts under rootfs/tmp).
		mod := sh(ctx, vm, true, "modinfo -n dummy")
		Expect(sh(ctx, vm, false, "grep -c '^dummy ' /proc/modules || true")).To(Equal("0"), "the dummy module must not be loaded before the test")
		dest := path.Join(theSpec.Btrfs.MountPoint, "box1/rootfs/root", path.Base(mod))
		DeferCleanup(func(ctx SpecContext) { sh(ctx, vm, true, remote.Shf("rm -f %s", dest)) })
		sh(ctx, vm, true, remote.Shf("cp %s %s && chown %d:%d %s", mod, dest, theSpec.IDMap.Start, theSpec.IDMap.Start, dest))
		r := try(ctx, box1, false, remote.Shf("insmod /root/%s", path.Base(mod)))
		Expect(r.ExitCode).NotTo(BeZero(), "root in box1 loaded a kernel module")
		Expect(r.Stderr + r.Stdout).To(ContainSubstring("not permitted"))
		Expect(sh(ctx, vm, false, "grep -c '^dummy ' /proc/modules || true")).To(Equal("0"))
	}, SpecTimeout(time.Minute))

	It("cannot change a VM-wide sysctl", func(ctx SpecContext) {
		before := sh(ctx, vm, false, "cat /proc/sys/vm/swappiness")
		next := "7"
		if before == next {
			next = "8"
		}
		r := try(ctx, box1, false, "echo "+next+" > /proc/sys/vm/swappiness")
		Expect(r.ExitCode).NotTo(BeZero(), "root in box1 wrote vm.swappiness")
		Expect(sh(ctx, vm, false, "cat /proc/sys/vm/swappiness")).To(Equal(before))
	}, SpecTimeout(time.Minute))

	It("cannot mount the data disk", func(ctx SpecContext) {
		uuid := sh(ctx, vm, true, remote.Shf("findmnt -n -o UUID --mountpoint %s", theSpec.Btrfs.MountPoint))
		r := try(ctx, box1, false, remote.Shf("mkdir -p /tmp/disk && mount -t btrfs UUID=%s /tmp/disk", uuid))
		Expect(r.ExitCode).NotTo(BeZero(), "root in box1 mounted the data disk")
	}, SpecTimeout(time.Minute))
})

var _ = Describe("n1, the nested container", Ordered, Label(LevelNested), func() {
	attachEvidence("n1")
	var box1, n1 remote.Target
	BeforeAll(func() { box1, n1 = targets["box1"], targets["n1"] })

	It("is RUNNING inside box1", func(ctx SpecContext) {
		Expect(sh(ctx, box1, false, "lxc-info -n n1 -s -H")).To(Equal("RUNNING"))
	}, SpecTimeout(time.Minute))

	It("runs a command", func(ctx SpecContext) {
		Expect(sh(ctx, n1, false, "echo hello from $(hostname)")).To(Equal("hello from n1"))
	}, SpecTimeout(time.Minute))

	It("runs its processes under subordinate uids, never 0, seen from the VM", func(ctx SpecContext) {
		// n1's processes are those in its cgroup, whichever pid namespace they show in.
		pids := strings.Fields(sh(ctx, vm, false, "grep -l 'lxc.payload.n1' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 || true"))
		Expect(pids).NotTo(BeEmpty(), "no process of n1 found from the VM")
		for _, p := range pids {
			uidLine := sh(ctx, vm, false, fmt.Sprintf("grep '^Uid:' /proc/%s/status || true", p))
			if uidLine == "" {
				continue // exited meanwhile
			}
			for _, u := range strings.Fields(uidLine)[1:] {
				n, err := strconv.Atoi(u)
				Expect(err).NotTo(HaveOccurred())
				Expect(n).To(BeNumerically(">=", theSpec.IDMap.Start), "process %s of n1 runs as uid %d on the VM", p, n)
			}
		}
	}, SpecTimeout(time.Minute))

	It("can be stopped and started again", func(ctx SpecContext) {
		sh(ctx, box1, false, "lxc-stop -n n1 -t 10 || lxc-stop -n n1 -k")
		Expect(sh(ctx, box1, false, "lxc-info -n n1 -s -H")).To(Equal("STOPPED"))
		sh(ctx, box1, false, "lxc-start -n n1 -d && lxc-wait -n n1 -s RUNNING -t 60")
		Expect(sh(ctx, n1, false, "echo again")).To(Equal("again"))
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("provisioning again", Ordered, Label("provision"), func() {
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

// checksums reads the sha256 of each managed file on its target.
func checksums(ctx SpecContext, files []provision.ManagedFile) map[string]string {
	GinkgoHelper()
	out := map[string]string{}
	for _, f := range files {
		out[f.Target.Name()+":"+f.Path] = sh(ctx, f.Target, true, remote.Shf("sha256sum %s", f.Path))
	}
	return out
}
