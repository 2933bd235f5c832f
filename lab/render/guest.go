// Package render is the one source of every file labctl writes: the Vagrantfile (from the
// root Vagrantfile.tmpl) and every guest file, in the dialect of the guest's LXC version.
// The provisioner writes exactly what it returns, the image builder bakes it, and golden
// files under testdata/ pin it.
package render

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"regexp"
	"strings"
	"text/template"

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

// guestTemplates are the whole guest files, one template each (text/template, missing keys
// are errors), rendered with guestData.
//
//go:embed guest/*.tmpl
var guestTemplates embed.FS

var guestT = template.Must(template.New("guest").Option("missingkey=error").ParseFS(guestTemplates, "guest/*.tmpl"))

// guestData is what a guest file's template sees.
type guestData struct {
	// Header is the first line of every whole file: who rendered it, for which LXC (not for
	// which lab: the lab's name never reaches the guest, so that labs share provisioned layers).
	Header string
	Spec   *spec.Spec
	// LXC is the guest's LXC version: {{.LXC.Set "lxc.idmap" ...}} writes a key in its dialect.
	LXC lxc.Version
	// Container is the container the file belongs to (files inside a container).
	Container spec.Container
	// NestedProfile is what containers nested in a nesting one get as their AppArmor profile.
	NestedProfile string
	// MountUnit is the systemd mount unit of the data disk's mount point.
	MountUnit string
}

// UserManagerDropIn orders every user's manager after the data disk's mount (and so stops it
// first at shutdown).
const UserManagerDropIn = "/etc/systemd/system/user@.service.d/labctl-data-disk.conf"

// SSHKeepalive makes the VM's sshd drop a client that answers no keepalive for 30 s: the
// sessions of labctl's agents end when their host side is gone (a revert to a snapshot, a
// killed connection), with the agents they ran in the VM and its containers.
const SSHKeepalive = "/etc/ssh/sshd_config.d/labctl-keepalive.conf"

// MountUnit is systemd's name of the mount unit of absolute path p (systemd-escape --path
// --suffix=mount): the slashes between its parts become dashes, every byte but letters,
// digits, ':', '_' and a '.' not first is written \xNN.
func MountUnit(p string) string {
	p = strings.Trim(path.Clean(p), "/")
	if p == "" {
		return "-.mount"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String() + ".mount"
}

// guestRendering is one rendering of a lab's guest files.
type guestRendering struct {
	s     *spec.Spec
	in    GuestInputs
	data  guestData
	files []GuestFile
	err   error
}

// Guest renders every file the provisioner manages, for the given LXC version. Each file
// says at which stage of provisioning it is written, and by which step.
func Guest(s *spec.Spec, in GuestInputs) ([]GuestFile, error) {
	d, err := lxc.Parse(in.LXCVersion)
	if err != nil {
		return nil, err
	}
	g := &guestRendering{s: s, in: in, data: guestData{
		Header: fmt.Sprintf("# Rendered by labctl for LXC %s (%s).", d.Version, d.Name()),
		Spec:   s, LXC: d, NestedProfile: lxc.NestedProfile, MountUnit: MountUnit(s.Btrfs.MountPoint),
	}}
	g.vmFiles()
	autostart := false
	for i, c := range s.Containers {
		if c.Parent != "" {
			g.nestedConfig(i, c)
		} else {
			g.containerConfig(i, c)
			autostart = autostart || c.Autostart
		}
		if c.Image.Type == "local" {
			g.insideFiles(c) // only labctl's own images are configured from the inside
		}
	}
	if autostart && s.Box.Release != "" {
		// The boxes labctl builds run systemd: the lab user's manager (linger) starts the
		// containers of the VM at boot, in a delegated cgroup as labctl starts them, and stops
		// them cleanly before the VM goes down.
		g.whole(g.vm(path.Join(s.Home(), ".config/systemd/user", AutostartUnit), g.userOwner(), "containers start at boot", "autostart unit", StageUser), "autostart.service.tmpl", spec.Container{})
		g.whole(g.vm(UserManagerDropIn, "root:root", "containers stop before the data disk is unmounted", "user manager order", StageUser), "user-manager.conf.tmpl", spec.Container{})
	}
	if s.Box.Release != "" {
		g.whole(g.vm(SSHKeepalive, "root:root", "sessions whose client is gone end, with their agents", "sshd keepalive", StageUser), "sshd-keepalive.conf.tmpl", spec.Container{})
	}
	return g.files, g.err
}

// vm is a file of the VM.
func (g *guestRendering) vm(p, owner, why, step string, stage Stage) GuestFile {
	return GuestFile{Path: p, VMPath: p, Owner: owner, Mode: 0o644, Why: why, Step: step, Stage: stage}
}

// inside is a file inside container c of the VM.
func (g *guestRendering) inside(c spec.Container, p, why string) GuestFile {
	return GuestFile{Target: c.Name, Container: c.Name, Path: p, VMPath: path.Join(g.s.RootfsOnVM(c.Name), p),
		Owner: "root:root", Mode: 0o644, Why: why, Step: c.Name + ":" + path.Base(p), Stage: StageInside}
}

func (g *guestRendering) userOwner() string { return g.s.User + ":" + g.s.User }

// whole adds f with its content rendered from the template tmpl (c: the container it is of).
func (g *guestRendering) whole(f GuestFile, tmpl string, c spec.Container) {
	data := g.data
	data.Container = c
	var b bytes.Buffer
	if err := guestT.ExecuteTemplate(&b, tmpl, data); err != nil && g.err == nil {
		g.err = fmt.Errorf("render %s: %w", f.VMPath, err)
	}
	f.Content = b.Bytes()
	g.files = append(g.files, f)
}

// lines adds f as lines ensured in a shared file; owns is the regexp of the lines that are
// the lab's ("" none).
func (g *guestRendering) lines(f GuestFile, owns string, lines ...string) {
	f.Lines, f.Owns = lines, owns
	g.files = append(g.files, f)
}

// vmFiles are the VM's own files: subordinate ids, fstab, the user's LXC configuration, the
// veths the user may create, and (on labctl's boxes) lxc-net's.
func (g *guestRendering) vmFiles() {
	s := g.s
	idmap := fmt.Sprintf("%s:%d:%d", s.User, s.IDMap.Start, s.IDMap.Count)
	userRange := "^" + regexp.QuoteMeta(s.User) + ":"
	g.lines(g.vm("/etc/subuid", "root:root", "subordinate uids of the lab user", "subuid", StageUser), userRange, idmap)
	g.lines(g.vm("/etc/subgid", "root:root", "subordinate gids of the lab user", "subgid", StageUser), userRange, idmap)
	g.lines(g.vm("/etc/fstab", "root:root", "the btrfs data disk", "fstab", StageDisk),
		`^\S+\s+`+regexp.QuoteMeta(s.Btrfs.MountPoint)+`\s`, FstabLine(s, g.in.DiskUUID))
	g.whole(g.vm(path.Join(s.Home(), ".config/lxc/default.conf"), g.userOwner(), "the user's container defaults: idmap and network", "user default.conf", StageUser), "user-default.conf.tmpl", spec.Container{})
	g.whole(g.vm(path.Join(s.Home(), ".config/lxc/lxc.conf"), g.userOwner(), "containers live on the btrfs disk", "user lxc.conf", StageUser), "user-lxc.conf.tmpl", spec.Container{})
	g.lines(g.vm("/etc/lxc/lxc-usernet", "root:root", "veths the user may create", "lxc-usernet", StageUser),
		"^"+regexp.QuoteMeta(s.User)+`\s+`+regexp.QuoteMeta(s.Network.Type)+`\s+`+regexp.QuoteMeta(s.Network.Link)+`\s`,
		fmt.Sprintf("%s %s %s %d", s.User, s.Network.Type, s.Network.Link, s.Network.MaxVeths))
	if s.Box.Release != "" {
		g.whole(g.vm("/etc/default/lxc-net", "root:root", "lxc-net provides the bridge", "lxc-net config", StageUser), "lxc-net.tmpl", spec.Container{})
	}
}

// startLines are the lines that start containers[i] when its parent boots: lxc.start.order
// keeps the spec's order (a higher value starts earlier).
func (g *guestRendering) startLines(i int) []string {
	return []string{"lxc.start.auto = 1", fmt.Sprintf("lxc.start.order = %d", len(g.s.Containers)-i)}
}

// nestedConfig is what labctl ensures in the config of containers[i], nested in its parent,
// inside its parent where root's lxcpath keeps it: its halt signal (labctl's image), nesting
// (nesting.conf's mounts, its parent's profile kept) and autostart (LXC's own service in the
// parent starts it when the parent boots).
func (g *guestRendering) nestedConfig(i int, c spec.Container) {
	var lines []string
	if c.Image.Type == "local" {
		lines = append(lines, g.data.LXC.Set("lxc.signal.halt", "SIGRTMIN+3"))
	}
	if c.Nesting {
		lines = append(lines, g.data.LXC.NestingLinesInside(c.AppArmor)...)
	}
	if c.Autostart {
		lines = append(lines, g.startLines(i)...)
	}
	if lines == nil {
		return
	}
	cfg := path.Join(spec.NestedLXCPath, c.Name, "config")
	why := c.Name + " starts with " + c.Parent
	if len(lines) > 2 || !c.Autostart {
		why = "halt signal, nesting and autostart of " + c.Name
	}
	g.lines(GuestFile{Target: c.Parent, Container: c.Name, Path: cfg, VMPath: path.Join(g.s.RootfsOnVM(c.Parent), cfg),
		Owner: "root:root", Mode: 0o640, Why: why, Step: c.Name + " config", Stage: StageContainerConfig}, "", lines...)
}

// containerConfig is what labctl ensures in the config of containers[i], a container of the
// VM: its halt signal, nesting and autostart.
func (g *guestRendering) containerConfig(i int, c spec.Container) {
	var lines []string
	if c.Image.Type == "local" {
		// labctl's images run systemd, which halts on SIGRTMIN+3; on LXC's default SIGPWR
		// it only starts sigpwr.target, so lxc-stop (and the VM's shutdown) waited 60 s
		// and then killed the container.
		lines = append(lines, g.data.LXC.Set("lxc.signal.halt", "SIGRTMIN+3"))
	}
	if c.Nesting {
		lines = append(lines, g.data.LXC.NestingLines(c.AppArmor, c.Unprivileged)...)
	}
	if c.Autostart {
		lines = append(lines, g.startLines(i)...)
	}
	if lines == nil {
		return
	}
	conf := g.vm(path.Join(g.s.ContainerDir(c.Name), "config"), g.userOwner(), "halt signal, nesting and autostart of "+c.Name, c.Name+" config", StageContainerConfig)
	conf.Container = c.Name
	g.lines(conf, "", lines...)
}

// insideFiles are the files inside a container of labctl's own image: its address, and, when
// it nests, no bridge and the defaults of the containers inside it.
func (g *guestRendering) insideFiles(c spec.Container) {
	// ifupdown + dhclient: systemd-networkd leaves links "pending" in a container whose /sys
	// is writable but that runs no udev. A nested container has no network: the image's eth0
	// (its top container's) is replaced by none.
	if c.Parent == "" {
		g.whole(g.inside(c, "/etc/network/interfaces.d/eth0", c.Name+"'s own address by DHCP"), "inside-eth0.tmpl", c)
	} else {
		g.whole(g.inside(c, "/etc/network/interfaces.d/eth0", "no network in "+c.Name), "inside-eth0-none.tmpl", c)
	}
	g.whole(g.inside(c, "/etc/default/lxc-net", "no bridge inside "+c.Name), "inside-lxc-net.tmpl", c)
	if c.Nesting {
		g.whole(g.inside(c, "/etc/lxc/default.conf", "defaults of containers nested in "+c.Name), "inside-default.conf.tmpl", c)
	}
}
