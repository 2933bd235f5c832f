package lab

import (
	"fmt"
	"path"
	"strings"

	"github.com/hashicorp/go-version"
)

// GuestFile is one file the provisioner manages in the guest: either a whole file (Content)
// or lines it ensures, each exactly once, in a file others share (Lines). The renderer is the
// only source of this text; the provisioner writes exactly it.
type GuestFile struct {
	// Target is where the file lives: "" for the VM, else the container's name (the path is
	// then inside that container).
	Target string
	// Path is the file's absolute path inside Target.
	Path string
	// VMPath is the same file's path as seen from the VM (a container's rootfs path for files
	// inside a container of the VM).
	VMPath string
	// Owner is user:group; Mode its permission bits.
	Owner string
	Mode  uint32
	// Content is the whole file; Lines are the lines ensured in a shared file.
	Content []byte
	Lines   []string
	// Why says in a few words what the file is for (shown by --plan).
	Why string
}

// IsLines reports whether the file is a set of lines ensured in a shared file.
func (f GuestFile) IsLines() bool { return f.Lines != nil }

// GuestPath is where `labctl render` writes the file under DIR/guest/.
func (f GuestFile) GuestPath() string { return strings.TrimPrefix(f.VMPath, "/") }

// GuestInputs are the values of guest files known only on the guest.
type GuestInputs struct {
	// LXCVersion is the guest's LXC version (the spec's lxc.version when rendering offline).
	LXCVersion string
	// DiskUUID is the data disk's filesystem UUID (known after mkfs); empty renders a
	// placeholder.
	DiskUUID string
}

// DiskUUIDPlaceholder stands for the data disk's UUID in renderings made before the disk is
// formatted.
const DiskUUIDPlaceholder = "DATA-DISK-UUID"

// Dialect is the configuration language of one LXC version.
type Dialect struct {
	Version *version.Version
}

var (
	v2_0 = version.Must(version.NewVersion("2.0"))
	v2_1 = version.Must(version.NewVersion("2.1"))
	v3_0 = version.Must(version.NewVersion("3.0"))
	v3_1 = version.Must(version.NewVersion("3.1"))
)

// NewDialect parses an LXC version (e.g. "5.0.2", "1.1.5-0ubuntu3") into its dialect. The
// comparison uses Core(): a Debian/Ubuntu suffix parses as a pre-release, and pre-releases
// never satisfy constraints.
func NewDialect(v string) (Dialect, error) {
	ver, err := version.NewVersion(v)
	if err != nil {
		return Dialect{}, fmt.Errorf("LXC version %q is not a version: %w", v, err)
	}
	return Dialect{Version: ver.Core()}, nil
}

// Legacy reports whether the version uses the keys LXC 2.1 renamed (and 3.0 removed).
func (d Dialect) Legacy() bool { return d.Version.LessThan(v2_1) }

// Key spells a configuration key in this dialect, given its modern (>= 2.1) name.
func (d Dialect) Key(modern string) string {
	if !d.Legacy() {
		return modern
	}
	if strings.HasPrefix(modern, "lxc.net.0.") {
		return "lxc.network." + strings.TrimPrefix(modern, "lxc.net.0.")
	}
	if old, ok := legacyKeys[modern]; ok {
		return old
	}
	return modern
}

var legacyKeys = map[string]string{
	"lxc.idmap":            "lxc.id_map",
	"lxc.apparmor.profile": "lxc.aa_profile",
	"lxc.rootfs.path":      "lxc.rootfs",
	"lxc.uts.name":         "lxc.utsname",
	"lxc.log.file":         "lxc.logfile",
	"lxc.log.level":        "lxc.loglevel",
	"lxc.tty.max":          "lxc.tty",
	"lxc.pty.max":          "lxc.pts",
	"lxc.mount.fstab":      "lxc.mount",
	"lxc.seccomp.profile":  "lxc.seccomp",
}

// Name says which dialect this is, for comments and reports.
func (d Dialect) Name() string {
	switch {
	case d.Version.LessThan(v2_0):
		return "LXC 1.x: legacy keys, nesting by cgroup mount + with-nesting profile"
	case d.Version.LessThan(v2_1):
		return "LXC 2.0: legacy keys, nesting by nesting.conf"
	case d.Version.LessThan(v3_1):
		return "LXC 2.1-3.0: new keys, nesting by nesting.conf"
	default:
		return "LXC >= 3.1: new keys, nesting by generated profile with allow_nesting"
	}
}

func (d Dialect) set(key, value string) string { return d.Key(key) + " = " + value }

// NestingLines are the lines appended to a container's config to let it run containers.
func (d Dialect) NestingLines(apparmor string) []string {
	const nestingConf = "lxc.include = /usr/share/lxc/config/nesting.conf"
	unconfined := apparmor == "unconfined"
	switch {
	case d.Version.LessThan(v2_0):
		profile := "lxc-container-default-with-nesting"
		if unconfined {
			profile = "unconfined"
		}
		return []string{"lxc.mount.auto = cgroup", d.set("lxc.apparmor.profile", profile)}
	case d.Version.LessThan(v3_1) && !unconfined:
		return []string{nestingConf}
	case !unconfined:
		return []string{d.set("lxc.apparmor.profile", "generated"), "lxc.apparmor.allow_nesting = 1"}
	default:
		// No AppArmor userspace in the guest: nesting.conf's mounts, deliberately unconfined,
		// and a writable cgroup tree for the nested container.
		return []string{nestingConf, d.set("lxc.apparmor.profile", "unconfined"), "lxc.mount.auto = cgroup:rw:force"}
	}
}

// Home is the lab user's home directory in the guest.
func (s *Spec) Home() string { return "/home/" + s.User }

// ContainerDir is where a container of the VM lives on the VM (lxcpath/NAME).
func (s *Spec) ContainerDir(name string) string { return path.Join(s.Btrfs.MountPoint, name) }

// FstabLine is the fstab entry of the data disk.
func (s *Spec) FstabLine(uuid string) string {
	ref := s.Disk.GuestDevice
	if s.Btrfs.FstabBy == "uuid" {
		if uuid == "" {
			uuid = DiskUUIDPlaceholder
		}
		ref = "UUID=" + uuid
	}
	return fmt.Sprintf("%s %s btrfs %s 0 1", ref, s.Btrfs.MountPoint, strings.Join(s.Btrfs.Options, ","))
}

// RenderGuest renders every file the provisioner manages, for the given LXC version.
func RenderGuest(s *Spec, in GuestInputs) ([]GuestFile, error) {
	d, err := NewDialect(in.LXCVersion)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# Rendered by labctl for lab %s, LXC %s (%s).\n", s.Name, d.Version, d.Name())
	userOwner := s.User + ":" + s.User
	idmap := fmt.Sprintf("%s:%d:%d", s.User, s.IDMap.Start, s.IDMap.Count)
	vm := func(p, owner string, mode uint32, why string) GuestFile {
		return GuestFile{Path: p, VMPath: p, Owner: owner, Mode: mode, Why: why}
	}
	var files []GuestFile
	add := func(f GuestFile, content []string, lines []string) {
		if content != nil {
			f.Content = []byte(strings.Join(content, "\n") + "\n")
		}
		f.Lines = lines
		files = append(files, f)
	}

	add(vm("/etc/subuid", "root:root", 0o644, "subordinate uids of the lab user"), nil, []string{idmap})
	add(vm("/etc/subgid", "root:root", 0o644, "subordinate gids of the lab user"), nil, []string{idmap})
	add(vm("/etc/fstab", "root:root", 0o644, "the btrfs data disk"), nil, []string{s.FstabLine(in.DiskUUID)})

	userDefault := []string{strings.TrimSuffix(header, "\n"),
		d.set("lxc.idmap", fmt.Sprintf("u 0 %d %d", s.IDMap.Start, s.IDMap.Count)),
		d.set("lxc.idmap", fmt.Sprintf("g 0 %d %d", s.IDMap.Start, s.IDMap.Count)),
		d.set("lxc.net.0.type", s.Network.Type),
		d.set("lxc.net.0.link", s.Network.Link),
		d.set("lxc.net.0.flags", "up"),
		d.set("lxc.net.0.hwaddr", s.Network.HWAddr),
	}
	add(vm(path.Join(s.Home(), ".config/lxc/default.conf"), userOwner, 0o644, "the user's container defaults: idmap and network"), userDefault, nil)
	add(vm(path.Join(s.Home(), ".config/lxc/lxc.conf"), userOwner, 0o644, "containers live on the btrfs disk"),
		[]string{strings.TrimSuffix(header, "\n"), "lxc.lxcpath = " + s.Btrfs.MountPoint}, nil)
	add(vm("/etc/lxc/lxc-usernet", "root:root", 0o644, "veths the user may create"), nil,
		[]string{fmt.Sprintf("%s %s %s %d", s.User, s.Network.Type, s.Network.Link, s.Network.MaxVeths)})
	if s.Box.Release != "" {
		add(vm("/etc/default/lxc-net", "root:root", 0o644, "lxc-net provides the bridge"),
			[]string{strings.TrimSuffix(header, "\n"), "# lxc-net provides " + s.Network.Link + " (10.0.3.0/24) for the containers' veths.",
				`USE_LXC_BRIDGE="true"`, `LXC_BRIDGE="` + s.Network.Link + `"`}, nil)
	}

	for _, c := range s.Containers {
		if c.Parent != "" || !c.Nesting {
			continue
		}
		cfg := path.Join(s.ContainerDir(c.Name), "config")
		add(vm(cfg, userOwner, 0o644, "nesting for "+c.Name), nil, d.NestingLines(c.AppArmor))
		if c.Image.Type != "local" {
			continue // only labctl's own images are configured from the inside
		}
		in := func(p, why string) GuestFile {
			return GuestFile{Target: c.Name, Path: p, VMPath: path.Join(s.ContainerDir(c.Name), "rootfs", p), Owner: "root:root", Mode: 0o644, Why: why}
		}
		// ifupdown + dhclient: systemd-networkd leaves links "pending" in a container whose /sys
		// is writable but that runs no udev.
		add(in("/etc/network/interfaces.d/eth0", c.Name+"'s own address by DHCP"),
			[]string{strings.TrimSuffix(header, "\n"), "auto eth0", "iface eth0 inet dhcp"}, nil)
		add(in("/etc/default/lxc-net", "no bridge inside "+c.Name),
			[]string{strings.TrimSuffix(header, "\n"),
				"# Deliberately no bridge inside " + c.Name + ": nested containers get no network",
				"# (lxc.net.0.type = empty), so lxc-net has nothing to wait for.",
				`USE_LXC_BRIDGE="false"`}, nil)
		nested := []string{strings.TrimSuffix(header, "\n"), d.set("lxc.net.0.type", "empty")}
		if c.AppArmor == "unconfined" {
			nested = append(nested, "# "+c.Name+" is unconfined (no AppArmor userspace), so are the containers inside it.",
				d.set("lxc.apparmor.profile", "unconfined"))
		}
		add(in("/etc/lxc/default.conf", "defaults of containers nested in "+c.Name), nested, nil)
	}
	return files, nil
}

// Render renders the Vagrantfile and the guest files of a spec.
func Render(s *Spec, vin VagrantInputs, gin GuestInputs) (*Rendering, error) {
	vf, err := RenderVagrantfile(s, vin)
	if err != nil {
		return nil, err
	}
	g, err := RenderGuest(s, gin)
	if err != nil {
		return nil, err
	}
	return &Rendering{Vagrantfile: vf, Guest: g}, nil
}
