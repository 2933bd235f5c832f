package spec

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/provider"
	"github.com/labctl/labctl/lab/release"
)

// FieldError is one invalid field of a spec: its path (e.g. containers[0].name), the bad
// value and what is wrong with it.
type FieldError struct {
	Field string
	Value any
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %s", e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s %s", e.Field, quoteValue(e.Value), e.Msg)
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

var (
	// nameRE is what LXC, Vagrant, libvirt and a shell all accept as a name.
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)
	userRE     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	boxNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$`)
	releaseRE  = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,30}$`)
	sizeRE     = regexp.MustCompile(`^([1-9][0-9]*)(MiB|GiB|TiB)$`)
	hwaddrRE   = regexp.MustCompile(`^([0-9a-f]{2}|xx):([0-9a-f]{2}|xx):([0-9a-f]{2}|xx):([0-9a-f]{2}|xx):([0-9a-f]{2}|xx):([0-9a-f]{2}|xx)$`)
	optionRE   = regexp.MustCompile(`^[a-z0-9_][a-z0-9_.-]*(=[A-Za-z0-9_.:/-]+)?$`)
	devRE      = regexp.MustCompile(`^/dev/[a-z][a-z0-9]{1,15}$`)
	imagePathR = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	archRE     = regexp.MustCompile(`^[a-z0-9_]{2,16}$`)
)

// isDotPart reports whether a part of a slash-separated name is empty, "." or "..".
func isDotPart(part string) bool { return part == "" || part == "." || part == ".." }

// IsName reports whether s is a valid name for a lab, a container or a bridge: what LXC,
// Vagrant, libvirt and a shell all accept.
func IsName(s string) bool { return nameRE.MatchString(s) }

// Validate checks every field and returns all problems at once, each naming the field path,
// the bad value and what to do. It changes nothing.
func (s *Spec) Validate() error {
	var p problems
	bad := p.bad
	s.validateBox(bad)
	s.validateVM(bad)
	s.validateDisk(bad)
	s.validateBtrfs(bad)
	s.validateUser(bad)
	s.validateNetwork(bad)
	lxcVer := s.validateLXC(bad)
	s.validateCgroup(bad, lxcVer)
	s.validateContainers(bad, lxcVer)
	return errors.Join(p...)
}

// ValidateBox checks what a box labctl builds depends on (`labctl box build`): the box, the
// user baked in, LXC and the cgroup hierarchy; not the containers, which a box does not
// carry.
func (s *Spec) ValidateBox() error {
	var p problems
	bad := p.bad
	s.validateBox(bad)
	s.validateUser(bad)
	lxcVer := s.validateLXC(bad)
	s.validateCgroup(bad, lxcVer)
	return errors.Join(p...)
}

// problems are the invalid fields found so far; bad adds one.
type problems []error

// badFunc adds an invalid field: its path, the bad value, what is wrong and what to do.
type badFunc func(field string, value any, format string, a ...any)

func (p *problems) bad(field string, value any, format string, a ...any) {
	*p = append(*p, &FieldError{Field: field, Value: value, Msg: fmt.Sprintf(format, a...)})
}

// validateBox checks the lab's name, its box and its provider.
func (s *Spec) validateBox(bad badFunc) {
	if !nameRE.MatchString(s.Name) {
		bad("name", s.Name, "is not a valid lab name: use 1-31 lowercase letters, digits and '-', starting with a letter")
	}
	switch {
	case s.Box.Name == "" && s.Box.Release == "":
		bad("box", nil, "set box.name (an existing Vagrant box) or box.release (%s, built by labctl)", strings.Join(release.Buildable(), ", "))
	case s.Box.Name != "" && s.Box.Release != "":
		bad("box", nil, "set either box.name or box.release, not both")
	case s.Box.Name != "" && (!boxNameRE.MatchString(s.Box.Name) || slices.ContainsFunc(strings.Split(s.Box.Name, "/"), isDotPart)):
		bad("box.name", s.Box.Name, "is not a valid Vagrant box name: use NAME or ORG/NAME, of letters, digits and ._- (no empty, '.' or '..' part: the name becomes a path under Vagrant's boxes)")
	case s.Box.Release != "" && !isBuildable(s.Box.Release):
		bad("box.release", s.Box.Release, "is not a release labctl can build: use one of %s, or box.name for an existing box", strings.Join(release.Buildable(), ", "))
	}
	if s.Box.Kernel != "" {
		if r, ok := release.Get(s.Box.Release); !ok || s.Box.Release == "" {
			bad("box.kernel", s.Box.Kernel, "needs box.release: labctl installs the kernel into the boxes it builds; drop it for box.name")
		} else if _, err := r.KernelOf(s.Box.Kernel); err != nil {
			bad("box.kernel", s.Box.Kernel, "%v", err)
		}
	}
	if _, ok := provider.Get(s.Provider); !ok && s.Provider != provider.Auto {
		bad("provider", s.Provider, "is not supported: use %s or %s", strings.Join(provider.Names(), ", "), provider.Auto)
	} else if s.Box.Release != "" && !s.ProviderInfo().BuildsBoxes {
		bad("provider", s.Provider, "cannot boot box.release %q: labctl builds %s boxes only; use provider %s (or %s)", s.Box.Release, provider.Builder(), provider.Builder(), provider.Auto)
	}
}

// validateVM checks the VM's size, boot timeout, accelerator, libvirt daemon and kernel.
func (s *Spec) validateVM(bad badFunc) {
	if s.CPUs < 1 || s.CPUs > 64 {
		bad("cpus", s.CPUs, "is out of range: use 1 to 64")
	}
	if s.Memory < 512 || s.Memory > 262144 {
		bad("memory", s.Memory, "is out of range: use 512 to 262144 (MiB)")
	}
	if s.BootTimeout < 10 || s.BootTimeout > 3600 {
		bad("boot_timeout", s.BootTimeout, "is out of range: use 10 to 3600 (seconds)")
	}
	switch s.Accelerator {
	case "auto", "kvm", "tcg":
	default:
		bad("accelerator", s.Accelerator, "is not supported: use auto, kvm or tcg")
	}
	switch s.Libvirt {
	case "auto", "session", "system":
		if s.Libvirt != "auto" && !s.ProviderInfo().Libvirt {
			bad("libvirt", s.Libvirt, "applies to libvirt's provider only, not %s: remove it, or use auto", s.ProviderFor())
		}
	default:
		bad("libvirt", s.Libvirt, "is not supported: use auto (system for root, session for everyone else), session or system")
	}
	if s.Kernel != "" {
		if _, err := version.NewConstraint(s.Kernel); err != nil {
			bad("kernel", s.Kernel, "is not a version constraint (e.g. \"~> 6.1.0\" or \">= 5.10\")")
		}
	}
}

// validateDisk checks the data disk.
func (s *Spec) validateDisk(bad badFunc) {
	if m := sizeRE.FindStringSubmatch(s.Disk.Size); m == nil {
		bad("disk.size", s.Disk.Size, "is not a size: use a whole number with MiB, GiB or TiB, e.g. \"20GiB\"")
	} else if mib, _ := s.Disk.SizeMiB(); mib < 256 {
		bad("disk.size", s.Disk.Size, "is too small for btrfs: use at least 256MiB")
	}
	if !imagePathR.MatchString(s.Disk.Image) || strings.Contains(s.Disk.Image, "..") || path.IsAbs(s.Disk.Image) {
		bad("disk.image", s.Disk.Image, "is not a relative path inside the lab directory (letters, digits, ._/- and no '..')")
	}
	if s.Disk.Bus != "sata" {
		bad("disk.bus", s.Disk.Bus, "is not supported: only sata")
	}
	if s.Disk.Controller == "" || strings.ContainsAny(s.Disk.Controller, "\"'\\#\n") {
		bad("disk.controller", s.Disk.Controller, "is not a valid controller name (no quotes, backslashes or '#')")
	}
	if s.Disk.Port < 1 || s.Disk.Port > 29 {
		bad("disk.port", s.Disk.Port, "is out of range: use 1 to 29 (port 0 holds the root disk)")
	}
	if s.Disk.Device != 0 {
		bad("disk.device", s.Disk.Device, "is not supported: SATA has one device per port, use 0")
	}
	if s.Disk.GuestDevice != "" && !devRE.MatchString(s.Disk.GuestDevice) {
		bad("disk.guest_device", s.Disk.GuestDevice, "is not a device path like /dev/sdb (leave empty to find the disk by its properties)")
	}
}

// validateBtrfs checks where and how the data disk is mounted.
func (s *Spec) validateBtrfs(bad badFunc) {
	mp := s.Btrfs.MountPoint
	if !path.IsAbs(mp) || path.Clean(mp) != mp || mp == "/" || !imagePathR.MatchString(mp) {
		bad("btrfs.mount_point", mp, "is not a clean absolute path other than / (e.g. /mnt)")
	} else if tree := systemTree(mp); tree != "" {
		bad("btrfs.mount_point", mp, "is in %s, a system or home tree: mounting the data disk there hides what it holds; use /mnt, /srv, /data or /media (or a directory below them), or a new top-level directory", tree)
	}
	if len(s.Btrfs.Options) == 0 {
		bad("btrfs.options", nil, "is empty: use at least [defaults]")
	}
	for i, o := range s.Btrfs.Options {
		if !optionRE.MatchString(o) {
			bad(fmt.Sprintf("btrfs.options[%d]", i), o, "is not a mount option")
		}
	}
	switch s.Btrfs.FstabBy {
	case "uuid":
	case "device":
		if s.Disk.GuestDevice == "" {
			bad("btrfs.fstab_by", s.Btrfs.FstabBy, "needs disk.guest_device (the name fstab uses); or use uuid")
		}
	default:
		bad("btrfs.fstab_by", s.Btrfs.FstabBy, "is not supported: use uuid or device")
	}
}

// validateUser checks the lab user and its subordinate id range.
func (s *Spec) validateUser(bad badFunc) {
	if !userRE.MatchString(s.User) || s.User == "root" {
		bad("user", s.User, "is not a valid unprivileged user name (lowercase, digits, '_' or '-'; not root)")
	}
	if s.IDMap.Start < 65536 {
		bad("idmap.start", s.IDMap.Start, "overlaps the ids of system and regular users (0-65535): use 100000 or more (the guest's own users and subordinate ranges are checked before provisioning)")
	}
	if s.IDMap.Count < 65536 {
		bad("idmap.count", s.IDMap.Count, "is too small: a container needs 65536 ids (uid 0 to 65535)")
	}
	if int64(s.IDMap.Start)+int64(s.IDMap.Count) > 1<<32-1 {
		bad("idmap", nil, "start+count exceeds the 32-bit id space")
	}
}

// validateNetwork checks the containers' network.
func (s *Spec) validateNetwork(bad badFunc) {
	if s.Network.Type != "veth" {
		bad("network.type", s.Network.Type, "is not supported: only veth")
	}
	if !nameRE.MatchString(s.Network.Link) || len(s.Network.Link) > 15 {
		bad("network.link", s.Network.Link, "is not a valid bridge name (at most 15 characters)")
	}
	if s.Network.MaxVeths < 1 || s.Network.MaxVeths > 1000 {
		bad("network.max_veths", s.Network.MaxVeths, "is out of range: use 1 to 1000")
	}
	if !hwaddrRE.MatchString(s.Network.HWAddr) {
		bad("network.hwaddr", s.Network.HWAddr, "is not a MAC template like 00:16:3e:xx:xx:xx")
	}
}

// validateLXC checks where LXC comes from and the version expected; it returns lxc.version
// parsed (nil when it is not a version).
func (s *Spec) validateLXC(bad badFunc) *lxc.Version {
	if s.LXC.Suite != "" && !releaseRE.MatchString(s.LXC.Suite) {
		bad("lxc.suite", s.LXC.Suite, "is not an apt suite name (e.g. trusty-backports)")
	} else if s.LXC.Suite != "" && s.Box.Release != "" {
		// Baked into a box labctl builds: a suite of the host's mirror that serves LXC, the
		// version the spec names.
		switch su, err := release.SuiteOf(s.LXC.Suite); {
		case err != nil:
			bad("lxc.suite", s.LXC.Suite, "%v", err)
		case su.LXC == "":
			bad("lxc.suite", s.LXC.Suite, "serves no LXC labctl knows: use a release's suite (bullseye 4.0.6, bookworm 5.0.2, trixie 6.0.4, forky 7.0.0)")
		case su.LXC != s.LXC.Version:
			bad("lxc.version", s.LXC.Version, "is not the LXC that lxc.suite %s serves (%s): set lxc.version: %s (and lxc.expect to match)", su.Name, su.LXC, su.LXC)
		}
	}
	s.validateLXCSource(bad)
	var lxcVer *lxc.Version
	if v, err := lxc.Parse(s.LXC.Version); err != nil {
		bad("lxc.version", s.LXC.Version, "is not a version of LXC 1.0 or newer (e.g. \"5.0.2\")")
	} else {
		lxcVer = &v
	}
	if s.LXC.Expect != "" {
		c, err := version.NewConstraint(s.LXC.Expect)
		switch {
		case err != nil:
			bad("lxc.expect", s.LXC.Expect, "is not a version constraint (e.g. \"~> 5.0.0\")")
		case lxcVer != nil && !c.Check(lxcVer.Version):
			bad("lxc.expect", s.LXC.Expect, "does not admit lxc.version %q: make them agree", s.LXC.Version)
		}
	}
	return lxcVer
}

// SizeMiB is the disk size in MiB.
func (d Disk) SizeMiB() (int64, error) {
	m := sizeRE.FindStringSubmatch(d.Size)
	if m == nil {
		return 0, fmt.Errorf("disk.size: %q is not a size", d.Size)
	}
	var n int64
	fmt.Sscan(m[1], &n)
	switch m[2] {
	case "GiB":
		n *= 1024
	case "TiB":
		n *= 1024 * 1024
	}
	return n, nil
}

func isBuildable(name string) bool {
	_, err := release.Lookup(name)
	return err == nil
}

// MountRoots are where the data disk may be mounted at any depth; elsewhere only on a new or
// empty directory (checked in the guest before provisioning), and never in a system tree.
var MountRoots = []string{"/mnt", "/srv", "/data", "/media"}

// systemTrees hold the system or the users' homes: a mount there hides what they hold.
var systemTrees = []string{"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
	"/opt", "/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var"}

// systemTree returns the system or home tree p is (or is in), or "".
func systemTree(p string) string {
	for _, t := range systemTrees {
		if p == t || strings.HasPrefix(p, t+"/") {
			return t
		}
	}
	return ""
}

// UnderMountRoot reports whether p is one of MountRoots or below one.
func UnderMountRoot(p string) bool {
	for _, r := range MountRoots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}
