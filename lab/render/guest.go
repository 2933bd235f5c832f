// Package render is the one source of every file labctl writes: the Vagrantfile (from the
// root Vagrantfile.tmpl) and every guest file, in the dialect of the guest's LXC version.
// The provisioner writes exactly what it returns, the image builder bakes it, and golden
// files under testdata/ pin it.
package render

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/spec"
)

// GuestFile is one file the provisioner manages in the guest: either a whole file (Content)
// or lines it ensures, each exactly once, in a file others share (Lines). The renderer is the
// only source of this text; the provisioner writes exactly it.
type GuestFile struct {
	// Target is where the file lives: "" for the VM, else the container's name (the path is
	// then inside that container).
	Target string
	// Container is the container the file belongs to (its config on the VM, or a file
	// inside it); empty for the VM's own files.
	Container string
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
	// Owns, for Lines, is a regexp of the lines of the shared file that are the lab's: those
	// of them that are not in Lines are removed (a changed fstab entry for the mount point,
	// another subordinate range of the user). Empty: the lab owns no other line.
	Owns string
	// Why says in a few words what the file is for (shown by --plan).
	Why string
	// Step names the provisioning step that writes the file.
	Step string
	// Stage is when in provisioning the file is written.
	Stage Stage
}

// Stage is the point of provisioning at which a guest file is written: each needs what the
// steps before it made.
type Stage int

// The stages, in provisioning order.
const (
	// StageDisk: once the data disk has its filesystem (fstab names its UUID).
	StageDisk Stage = iota
	// StageUser: once the data disk is mounted and owned (the user's LXC configuration).
	StageUser
	// StageContainerConfig: once the container exists (its config, on the VM).
	StageContainerConfig
	// StageInside: once the container runs (files inside it).
	StageInside
)

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

// AutostartUnit is the lab user's systemd unit that starts the containers of the VM at boot.
const AutostartUnit = "labctl-autostart.service"

// DiskUUIDPlaceholder stands for the data disk's UUID in renderings made before the disk is
// formatted.
const DiskUUIDPlaceholder = "DATA-DISK-UUID"

// FstabLine is the fstab entry of the data disk.
func FstabLine(s *spec.Spec, uuid string) string {
	ref := s.Disk.GuestDevice
	if s.Btrfs.FstabBy == "uuid" {
		if uuid == "" {
			uuid = DiskUUIDPlaceholder
		}
		ref = "UUID=" + uuid
	}
	return fmt.Sprintf("%s %s btrfs %s 0 1", ref, s.Btrfs.MountPoint, strings.Join(s.Btrfs.Options, ","))
}

// Guest renders every file the provisioner manages, for the given LXC version. Each file
// says at which stage of provisioning it is written, and by which step.
func Guest(s *spec.Spec, in GuestInputs) ([]GuestFile, error) {
	d, err := lxc.Parse(in.LXCVersion)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# Rendered by labctl for lab %s, LXC %s (%s).\n", s.Name, d.Version, d.Name())
	userOwner := s.User + ":" + s.User
	idmap := fmt.Sprintf("%s:%d:%d", s.User, s.IDMap.Start, s.IDMap.Count)
	vm := func(p, owner string, mode uint32, why, step string, stage Stage) GuestFile {
		return GuestFile{Path: p, VMPath: p, Owner: owner, Mode: mode, Why: why, Step: step, Stage: stage}
	}
	var files []GuestFile
	add := func(f GuestFile, content []string, lines []string) {
		if content != nil {
			f.Content = []byte(strings.Join(content, "\n") + "\n")
		}
		f.Lines = lines
		files = append(files, f)
	}

	owns := func(f GuestFile, re string) GuestFile { f.Owns = re; return f }
	userRange := "^" + regexp.QuoteMeta(s.User) + ":"
	add(owns(vm("/etc/subuid", "root:root", 0o644, "subordinate uids of the lab user", "subuid", StageUser), userRange), nil, []string{idmap})
	add(owns(vm("/etc/subgid", "root:root", 0o644, "subordinate gids of the lab user", "subgid", StageUser), userRange), nil, []string{idmap})
	add(owns(vm("/etc/fstab", "root:root", 0o644, "the btrfs data disk", "fstab", StageDisk), `^\S+\s+`+regexp.QuoteMeta(s.Btrfs.MountPoint)+`\s`),
		nil, []string{FstabLine(s, in.DiskUUID)})

	userDefault := []string{strings.TrimSuffix(header, "\n"),
		d.Set("lxc.idmap", fmt.Sprintf("u 0 %d %d", s.IDMap.Start, s.IDMap.Count)),
		d.Set("lxc.idmap", fmt.Sprintf("g 0 %d %d", s.IDMap.Start, s.IDMap.Count)),
		d.Set("lxc.net.0.type", s.Network.Type),
		d.Set("lxc.net.0.link", s.Network.Link),
		d.Set("lxc.net.0.flags", "up"),
		d.Set("lxc.net.0.hwaddr", s.Network.HWAddr),
	}
	add(vm(path.Join(s.Home(), ".config/lxc/default.conf"), userOwner, 0o644, "the user's container defaults: idmap and network", "user default.conf", StageUser), userDefault, nil)
	add(vm(path.Join(s.Home(), ".config/lxc/lxc.conf"), userOwner, 0o644, "containers live on the btrfs disk", "user lxc.conf", StageUser),
		[]string{strings.TrimSuffix(header, "\n"), "lxc.lxcpath = " + s.Btrfs.MountPoint}, nil)
	add(owns(vm("/etc/lxc/lxc-usernet", "root:root", 0o644, "veths the user may create", "lxc-usernet", StageUser),
		"^"+regexp.QuoteMeta(s.User)+`\s+`+regexp.QuoteMeta(s.Network.Type)+`\s+`+regexp.QuoteMeta(s.Network.Link)+`\s`), nil,
		[]string{fmt.Sprintf("%s %s %s %d", s.User, s.Network.Type, s.Network.Link, s.Network.MaxVeths)})
	if s.Box.Release != "" {
		add(vm("/etc/default/lxc-net", "root:root", 0o644, "lxc-net provides the bridge", "lxc-net config", StageUser),
			[]string{strings.TrimSuffix(header, "\n"), "# lxc-net provides " + s.Network.Link + " (10.0.3.0/24) for the containers' veths.",
				`USE_LXC_BRIDGE="true"`, `LXC_BRIDGE="` + s.Network.Link + `"`}, nil)
	}

	autostart := false
	for i, c := range s.Containers {
		// lxc.start.order: a higher value starts earlier, so the spec's order is kept.
		start := []string{"lxc.start.auto = 1", fmt.Sprintf("lxc.start.order = %d", len(s.Containers)-i)}
		if c.Parent != "" {
			if c.Autostart {
				// Inside its parent, where root's lxcpath keeps it; LXC's own service there
				// starts it when the parent boots.
				cfg := path.Join("/var/lib/lxc", c.Name, "config")
				add(GuestFile{Target: c.Parent, Container: c.Name, Path: cfg, VMPath: path.Join(s.ContainerDir(c.Parent), "rootfs", cfg),
					Owner: "root:root", Mode: 0o640, Why: c.Name + " starts with " + c.Parent, Step: c.Name + " config", Stage: StageContainerConfig}, nil, start)
			}
			continue
		}
		var lines []string
		if c.Image.Type == "local" {
			// labctl's images run systemd, which halts on SIGRTMIN+3; on LXC's default SIGPWR
			// it only starts sigpwr.target, so lxc-stop (and the VM's shutdown) waited 60 s
			// and then killed the container.
			lines = append(lines, d.Set("lxc.signal.halt", "SIGRTMIN+3"))
		}
		if c.Nesting {
			lines = append(lines, d.NestingLines(c.AppArmor, c.Unprivileged)...)
		}
		if c.Autostart {
			lines = append(lines, start...)
			autostart = true
		}
		if lines != nil {
			cfg := path.Join(s.ContainerDir(c.Name), "config")
			conf := vm(cfg, userOwner, 0o644, "halt signal, nesting and autostart of "+c.Name, c.Name+" config", StageContainerConfig)
			conf.Container = c.Name
			add(conf, nil, lines)
		}
		if c.Image.Type != "local" {
			continue // only labctl's own images are configured from the inside
		}
		in := func(p, why string) GuestFile {
			return GuestFile{Target: c.Name, Container: c.Name, Path: p, VMPath: path.Join(s.ContainerDir(c.Name), "rootfs", p),
				Owner: "root:root", Mode: 0o644, Why: why, Step: c.Name + ":" + path.Base(p), Stage: StageInside}
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
		if !c.Nesting {
			continue
		}
		nested := []string{strings.TrimSuffix(header, "\n"), d.Set("lxc.net.0.type", "empty")}
		if c.AppArmor == "unconfined" {
			nested = append(nested, "# "+c.Name+" is unconfined (no AppArmor userspace), so are the containers inside it.",
				d.Set("lxc.apparmor.profile", "unconfined"))
		} else {
			nested = append(nested, "# Containers nested in "+c.Name+" keep its AppArmor profile: LXC cannot change profiles inside it.",
				d.Set("lxc.apparmor.profile", lxc.NestedProfile))
		}
		add(in("/etc/lxc/default.conf", "defaults of containers nested in "+c.Name), nested, nil)
	}
	if autostart && s.Box.Release != "" {
		// The boxes labctl builds run systemd: the lab user's manager (linger) starts the
		// containers of the VM at boot, in a delegated cgroup as labctl starts them, and stops
		// them cleanly before the VM goes down.
		unit := vm(path.Join(s.Home(), ".config/systemd/user", AutostartUnit), userOwner, 0o644, "containers start at boot", "autostart unit", StageUser)
		add(unit, []string{strings.TrimSuffix(header, "\n"),
			"[Unit]",
			"Description=labctl lab " + s.Name + ": the containers marked lxc.start.auto",
			"",
			"[Service]",
			"Type=oneshot",
			"RemainAfterExit=yes",
			"TimeoutStartSec=300",
			"Delegate=yes",
			"# Commands by name: systemd finds them in /usr/bin or /bin (bullseye's /usr is not merged).",
			"# The data disk is mounted nofail: it may come some time after the user's manager.",
			"ExecStartPre=sh -c 'i=0; until mountpoint -q " + s.Btrfs.MountPoint + "; do i=$((i+1)); [ $i -gt 120 ] && exit 1; sleep 1; done'",
			"# The containers' veths join " + s.Network.Link + ", which lxc-net (a system service) brings up.",
			"ExecStartPre=sh -c 'i=0; until ip link show " + s.Network.Link + " >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 60 ] && exit 1; sleep 1; done'",
			"ExecStart=lxc-autostart",
			"ExecStop=lxc-autostart --shutdown --timeout 20",
			"",
			"[Install]",
			"WantedBy=default.target"}, nil)
	}
	return files, nil
}
