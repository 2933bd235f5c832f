package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/labctl/labctl/lab"
)

// Options change what provisioning may do.
type Options struct {
	// ForceFormat lets the data-disk step format a disk that holds a filesystem or partitions.
	ForceFormat bool
	// Plan only checks and lists what would change.
	Plan bool
	// Out receives one line per step; Log the detailed output.
	Out, Log io.Writer
}

// Provisioner turns a booted VM into the lab of its spec.
type Provisioner struct {
	Lab  *lab.Lab
	Spec *lab.Spec
	VM   Target
	// Comm uploads images; nil in unit tests.
	Comm  *Comm
	Facts Facts
	Opts  Options

	disk  *Disk
	guest []lab.GuestFile
}

// New gathers the facts of the VM and returns its provisioner.
func New(ctx context.Context, l *lab.Lab, vm Target, comm *Comm, opts Options) (*Provisioner, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	f, err := GatherFacts(ctx, vm, l.Spec.User)
	if err != nil {
		return nil, err
	}
	return &Provisioner{Lab: l, Spec: l.Spec, VM: vm, Comm: comm, Facts: f, Opts: opts}, nil
}

// Run runs every step in order.
func (p *Provisioner) Run(ctx context.Context) (Summary, error) {
	fmt.Fprintf(p.Opts.Out, "facts: %s\n", p.Facts)
	return RunSteps(ctx, p.Steps(), p.Opts.Out, p.Opts.Plan)
}

// Targets returns the lab's containers as targets, in spec order, given the facts.
func Targets(s *lab.Spec, vm Target, f Facts) map[string]*Container {
	out := map[string]*Container{}
	for _, c := range s.Containers {
		t := &Container{ContainerName: c.Name}
		if c.Parent == "" {
			t.Parent, t.Lvl, t.AsUser = vm, LevelUnpriv, c.Unprivileged
			t.Attach = []string{"lxc-attach"}
			if c.Unprivileged && f.Delegated() {
				// From inside a delegated scope of the user's systemd (what Debian's
				// lxc-unpriv-attach does, quietly): a plain lxc-attach from an SSH session fails
				// "Failed to move process into target cgroup".
				t.Attach = delegatedScope("lxc-attach")
				t.Env = userBusEnv(f.UID)
			}
		} else {
			t.Parent, t.Lvl, t.Attach = out[c.Parent], LevelNested, []string{"lxc-attach"}
		}
		out[c.Name] = t
	}
	return out
}

// delegatedScope runs an LXC command in a new systemd --user scope with cgroup delegation.
func delegatedScope(cmd string) []string {
	return []string{"systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", cmd}
}

// userBusEnv lets systemd-run --user reach the user's manager from an SSH session that may
// have no logind session of its own.
func userBusEnv(uid int) []string {
	dir := fmt.Sprintf("/run/user/%d", uid)
	return []string{"XDG_RUNTIME_DIR=" + dir, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + dir + "/bus"}
}

// render renders the guest files for the guest's LXC version and the data disk's UUID.
func (p *Provisioner) render(ctx context.Context) ([]lab.GuestFile, error) {
	if p.guest != nil {
		return p.guest, nil
	}
	v := p.Facts.LXCVersion
	if v == "" {
		return nil, errors.New("LXC is not installed in the guest yet")
	}
	uuid := ""
	if p.Spec.Btrfs.FstabBy == "uuid" {
		d, err := p.dataDisk(ctx)
		if err != nil {
			return nil, err
		}
		if d.FSType != "btrfs" {
			return nil, fmt.Errorf("data disk %s is not formatted yet", d.Path)
		}
		uuid = d.UUID
	}
	g, err := lab.RenderGuest(p.Spec, lab.GuestInputs{LXCVersion: v, DiskUUID: uuid})
	if err != nil {
		return nil, err
	}
	p.guest = g
	return g, nil
}

func (p *Provisioner) guestFile(ctx context.Context, target, filePath string) (lab.GuestFile, error) {
	g, err := p.render(ctx)
	if err != nil {
		return lab.GuestFile{}, err
	}
	for _, f := range g {
		if f.Target == target && f.Path == filePath {
			return f, nil
		}
	}
	return lab.GuestFile{}, fmt.Errorf("no rendered file %s on %q", filePath, target)
}

// fileStep is a step that makes one rendered file exactly so.
func (p *Provisioner) fileStep(name, target, filePath string, t func() Target) Step {
	return Step{
		Name: name,
		Check: func(ctx context.Context) (bool, string, error) {
			f, err := p.guestFile(ctx, target, filePath)
			if err != nil {
				return false, "", err
			}
			return FileState(ctx, t(), f)
		},
		Apply: func(ctx context.Context) error {
			f, err := p.guestFile(ctx, target, filePath)
			if err != nil {
				return err
			}
			return WriteFile(ctx, t(), f)
		},
	}
}

// Steps are the provisioning steps in the recipe's order, generalised.
func (p *Provisioner) Steps() []Step {
	s := p.Spec
	vm := func() Target { return p.VM }
	steps := []Step{p.packagesStep(), p.preflightStep(), p.diskStep(), p.fileStep("fstab", "", "/etc/fstab", vm), p.mountStep(), p.ownerStep()}
	for _, f := range []struct{ name, path string }{
		{"subuid", "/etc/subuid"}, {"subgid", "/etc/subgid"},
		{"user default.conf", path.Join(s.Home(), ".config/lxc/default.conf")},
		{"user lxc.conf", path.Join(s.Home(), ".config/lxc/lxc.conf")},
		{"lxc-usernet", "/etc/lxc/lxc-usernet"},
	} {
		steps = append(steps, p.fileStep(f.name, "", f.path, vm))
	}
	if s.Box.Release != "" {
		steps = append(steps, p.fileStep("lxc-net config", "", "/etc/default/lxc-net", vm))
	}
	steps = append(steps, p.bridgeStep(), p.lingerStep())
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Parent == "" {
			steps = append(steps, p.createTopStep(c), p.fileStep(c.Name+" nesting config", "", path.Join(s.ContainerDir(c.Name), "config"), vm), p.startStep(c))
			if c.Image.Type == "local" {
				for _, f := range []string{"/etc/network/interfaces.d/eth0", "/etc/default/lxc-net", "/etc/lxc/default.conf"} {
					name := c.Name + ":" + path.Base(f)
					steps = append(steps, p.fileStep(name, c.Name, f, func() Target { return p.target(c.Name) }))
				}
			}
			steps = append(steps, p.addressStep(c))
			if c.Nesting {
				steps = append(steps, p.lxcInsideStep(c))
			}
		} else {
			steps = append(steps, p.createNestedStep(c), p.startStep(c))
		}
	}
	return steps
}

// parentOf is where a container's LXC commands run: the VM, or its parent container.
func (p *Provisioner) parentOf(c *lab.Container) Target {
	if c.Parent == "" {
		return p.VM
	}
	return p.target(c.Parent)
}

func (p *Provisioner) target(name string) Target {
	return Targets(p.Spec, p.VM, p.Facts)[name]
}

// packagesStep checks the packages the lab needs in the guest; self-built boxes carry them,
// so on those the step only checks.
func (p *Provisioner) packagesStep() Step {
	btrfs := "btrfs-progs"
	if p.Facts.Release == "trusty" || p.Facts.Release == "xenial" {
		btrfs = "btrfs-tools"
	}
	pkgs := []string{"lxc", btrfs, "uidmap"}
	if p.Spec.Box.Release != "" {
		pkgs = append(pkgs, "lxc-templates", "xz-utils", "libpam-systemd", "dbus-user-session", "dnsmasq-base")
	}
	missing := func(ctx context.Context) ([]string, error) {
		out, err := Sh(ctx, p.VM, false, "dpkg-query -W -f '${Package} ${db:Status-Status}\\n' "+Join(pkgs...)+" 2>/dev/null || true")
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "installed" {
				have[f[0]] = true
			}
		}
		var m []string
		for _, pk := range pkgs {
			if !have[pk] {
				m = append(m, pk)
			}
		}
		return m, nil
	}
	return Step{
		Name: "packages",
		Hint: "the guest needs LXC from " + orDefault(p.Spec.LXC.Suite, "its default suite") + "; with a self-built box, rebuild it (`labctl box build`)",
		Check: func(ctx context.Context) (bool, string, error) {
			m, err := missing(ctx)
			if err != nil {
				return false, "", err
			}
			if len(m) == 0 {
				return true, "", nil
			}
			return false, "install " + strings.Join(m, " "), nil
		},
		Apply: func(ctx context.Context) error {
			m, err := missing(ctx)
			if err != nil {
				return err
			}
			args := []string{"apt-get", "install", "-y", "--no-install-recommends"}
			if p.Spec.LXC.Suite != "" {
				args = append(args, "-t", p.Spec.LXC.Suite)
			}
			line := "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && " + Join(append(args, m...)...)
			if _, err := Must(ctx, p.VM, Cmd{Line: line, Sudo: true, Stdout: p.Opts.Log, Stderr: p.Opts.Log}); err != nil {
				return err
			}
			p.Facts, err = GatherFacts(ctx, p.VM, p.Spec.User)
			return err
		},
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// preflightStep fails early, with a hint, when the guest cannot host this lab.
func (p *Provisioner) preflightStep() Step {
	return Step{
		Name: "preflight",
		Hint: "pick a box/preset whose kernel and LXC match the spec (`labctl presets`), or relax kernel / lxc.expect in lab.yaml",
		Check: func(ctx context.Context) (bool, string, error) {
			f := p.Facts
			if !f.UserNS {
				return false, "", errors.New("unprivileged user namespaces are disabled in the guest kernel (user.max_user_namespaces=0 or kernel.unprivileged_userns_clone=0)")
			}
			lxcV := f.LXC()
			if lxcV == nil {
				return false, "", fmt.Errorf("LXC is not installed in the guest (lxc-create --version printed %q)", f.LXCVersion)
			}
			if c := p.Spec.LXC.Expect; c != "" {
				cons, _ := version.NewConstraint(c)
				if !cons.Check(lxcV) {
					return false, "", fmt.Errorf("guest LXC %s does not satisfy lxc.expect %q", f.LXCVersion, c)
				}
			}
			if c := p.Spec.Kernel; c != "" {
				kv, err := f.KernelVersion()
				if err != nil {
					return false, "", err
				}
				cons, _ := version.NewConstraint(c)
				if !cons.Check(kv) {
					return false, "", fmt.Errorf("guest kernel %s does not satisfy kernel %q", f.Kernel, c)
				}
			}
			for _, c := range p.Spec.Containers {
				if c.Image.Type == "local" && lxcV.LessThan(version.Must(version.NewVersion("3.0"))) {
					return false, "", fmt.Errorf("containers %s: image type local needs LXC >= 3.0, the guest has %s", c.Name, f.LXCVersion)
				}
			}
			if f.Cgroup == "v2" && !f.Systemd {
				return false, "", errors.New("cgroup v2 without systemd: labctl starts unprivileged containers in a delegated systemd scope")
			}
			return true, "", nil
		},
		Apply: func(ctx context.Context) error { return nil },
	}
}

// Disk is a whole disk of the guest.
type Disk struct {
	Path, Serial, FSType, UUID string
	Size                       int64
}

// lsblkDev is one device of `lsblk -J -b` (null fields decode as empty strings).
type lsblkDev struct {
	Path       string     `json:"path"`
	Size       int64      `json:"size"`
	Type       string     `json:"type"`
	FSType     *string    `json:"fstype"`
	Serial     *string    `json:"serial"`
	Mountpoint *string    `json:"mountpoint"`
	UUID       *string    `json:"uuid"`
	Children   []lsblkDev `json:"children"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// FindDataDisk picks the data disk from `lsblk -J -b` output: the disk pinned by name when
// given, else the one with labctl's serial, else the only whole disk of the spec's size that
// is not the root disk. It never picks a disk that holds the root filesystem.
func FindDataDisk(lsblkJSON string, sizeBytes int64, pinned string) (Disk, error) {
	var doc struct {
		Blockdevices []lsblkDev `json:"blockdevices"`
	}
	if err := json.Unmarshal([]byte(lsblkJSON), &doc); err != nil {
		return Disk{}, fmt.Errorf("parse lsblk output: %w", err)
	}
	holdsRoot := func(d lsblkDev) bool {
		if str(d.Mountpoint) == "/" {
			return true
		}
		for _, c := range d.Children {
			if str(c.Mountpoint) == "/" || str(c.Mountpoint) == "/boot" {
				return true
			}
		}
		return false
	}
	var bySerial, bySize []Disk
	var seen []string
	for _, dev := range doc.Blockdevices {
		if dev.Type != "disk" && !(dev.Type == "loop" && dev.Path == pinned) {
			continue // only whole disks, or a loop device named on purpose
		}
		d := Disk{Path: dev.Path, Size: dev.Size, Serial: str(dev.Serial), FSType: str(dev.FSType), UUID: str(dev.UUID)}
		seen = append(seen, fmt.Sprintf("%s (%d bytes, fs %q)", d.Path, d.Size, d.FSType))
		if holdsRoot(dev) {
			if pinned == d.Path {
				return Disk{}, fmt.Errorf("disk.guest_device %s holds the root filesystem: it is not a data disk", pinned)
			}
			continue
		}
		switch {
		case pinned != "" && d.Path == pinned:
			return d, nil
		case d.Serial == lab.DiskSerial:
			bySerial = append(bySerial, d)
		case d.Size == sizeBytes:
			bySize = append(bySize, d)
		}
	}
	switch {
	case pinned != "":
		return Disk{}, fmt.Errorf("disk.guest_device %s is not a disk of the guest (found %s)", pinned, strings.Join(seen, ", "))
	case len(bySerial) == 1:
		return bySerial[0], nil
	case len(bySize) == 1:
		return bySize[0], nil
	case len(bySize) > 1:
		return Disk{}, fmt.Errorf("%d disks have the data disk's size %d bytes: pin one with disk.guest_device", len(bySize), sizeBytes)
	}
	return Disk{}, fmt.Errorf("no data disk of %d bytes in the guest (found %s): check disk.size, and that the Vagrantfile attaches it", sizeBytes, strings.Join(seen, ", "))
}

func (p *Provisioner) dataDisk(ctx context.Context) (*Disk, error) {
	if p.disk != nil {
		return p.disk, nil
	}
	out, err := Sh(ctx, p.VM, true, "udevadm settle 2>/dev/null; lsblk -J -b -o NAME,PATH,SIZE,TYPE,FSTYPE,SERIAL,PTTYPE,MOUNTPOINT,UUID")
	if err != nil {
		return nil, err
	}
	mib, _ := p.Spec.Disk.SizeMiB()
	d, err := FindDataDisk(out, mib<<20, p.Spec.Disk.GuestDevice)
	if err != nil {
		return nil, err
	}
	// The filesystem as the disk itself says, not as udev last saw it.
	probe, err := Sh(ctx, p.VM, true, Shf("blkid -p -o export %s || true", d.Path))
	if err != nil {
		return nil, err
	}
	d.FSType, d.UUID = "", ""
	for _, line := range strings.Split(probe, "\n") {
		if v, ok := strings.CutPrefix(line, "TYPE="); ok {
			d.FSType = v
		}
		if v, ok := strings.CutPrefix(line, "UUID="); ok {
			d.UUID = v
		}
	}
	p.disk = &d
	return p.disk, nil
}

// DataDiskLabel is the btrfs label labctl gives the data disk; a btrfs with another label is
// someone else's and is not touched without --force-format.
const DataDiskLabel = "labctl"

func (p *Provisioner) diskStep() Step {
	return Step{
		Name: "btrfs data disk",
		Hint: "labctl formats only a blank disk; if this disk's data may go, run `labctl provision --force-format`",
		Check: func(ctx context.Context) (bool, string, error) {
			d, err := p.dataDisk(ctx)
			if err != nil {
				return false, "", err
			}
			if d.FSType == "btrfs" {
				label, err := Sh(ctx, p.VM, true, Shf("blkid -o value -s LABEL %s || true", d.Path))
				if err != nil {
					return false, "", err
				}
				if label == DataDiskLabel || p.Opts.Plan {
					return true, "", nil
				}
				if !p.Opts.ForceFormat {
					return false, "", fmt.Errorf("%s holds a btrfs filesystem labelled %q, not labctl's: refusing to use or format it without --force-format", d.Path, label)
				}
			}
			return false, fmt.Sprintf("mkfs.btrfs %s (%d bytes, blank)", d.Path, d.Size), nil
		},
		Apply: func(ctx context.Context) error {
			d, err := p.dataDisk(ctx)
			if err != nil {
				return err
			}
			// Look again, beyond lsblk: any signature (filesystem, RAID, partition table) or
			// partition means data.
			sig, err := Sh(ctx, p.VM, true, Shf("wipefs -n -O TYPE --noheadings %s; lsblk -n -o NAME %s | tail -n +2", d.Path, d.Path))
			if err != nil {
				return err
			}
			if strings.TrimSpace(sig) != "" && !p.Opts.ForceFormat {
				return fmt.Errorf("%s is not blank (%s): refusing to format it; pass --force-format if its data may be destroyed",
					d.Path, strings.Join(strings.Fields(sig), ", "))
			}
			if _, err := Sh(ctx, p.VM, true, Shf("mkfs.btrfs -f -L %s %s", DataDiskLabel, d.Path)); err != nil {
				return err
			}
			p.disk, p.guest = nil, nil // read the new UUID, render again
			_, err = p.dataDisk(ctx)
			return err
		},
	}
}

func (p *Provisioner) mountStep() Step {
	mp := p.Spec.Btrfs.MountPoint
	return Step{
		Name: "mount " + mp,
		Hint: "check the fstab line with `labctl exec -- cat /etc/fstab` and `dmesg`",
		Check: func(ctx context.Context) (bool, string, error) {
			out, err := Sh(ctx, p.VM, true, Shf("findmnt -n -o FSTYPE,OPTIONS --mountpoint %s || true", mp))
			if err != nil {
				return false, "", err
			}
			f := strings.Fields(out)
			if len(f) < 2 || f[0] != "btrfs" {
				return false, "mount " + mp, nil
			}
			for _, o := range p.Spec.Btrfs.Options {
				if o != "defaults" && !strings.Contains(","+f[1]+",", ","+o+",") {
					return false, "remount " + mp + " with " + o, nil
				}
			}
			return true, "", nil
		},
		Apply: func(ctx context.Context) error {
			_, err := Sh(ctx, p.VM, true, Shf("mkdir -p %s && (systemctl daemon-reload 2>/dev/null || true) && if mountpoint -q %s; then mount -o remount %s; else mount %s; fi", mp, mp, mp, mp))
			return err
		},
	}
}

func (p *Provisioner) ownerStep() Step {
	mp, want := p.Spec.Btrfs.MountPoint, p.Spec.User+":"+p.Spec.User
	return Step{
		Name: "owner of " + mp,
		Check: func(ctx context.Context) (bool, string, error) {
			got, err := Sh(ctx, p.VM, true, Shf("stat -c %%U:%%G %s", mp))
			if err != nil {
				return false, "", err
			}
			return got == want, "chown " + want + " " + mp, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := Sh(ctx, p.VM, true, Shf("chown %s %s", want, mp))
			return err
		},
	}
}

// bridgeStep makes lxc-net provide the bridge the containers' veths join.
func (p *Provisioner) bridgeStep() Step {
	link := p.Spec.Network.Link
	return Step{
		Name: "bridge " + link,
		Hint: "see `labctl exec -- sudo journalctl -u lxc-net`",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.VM.Run(ctx, Cmd{Line: Shf("ip -4 -o addr show dev %s", link)})
			if err != nil {
				return false, "", err
			}
			return r.OK() && strings.Contains(r.Stdout, "inet "), "restart lxc-net to bring up " + link, nil
		},
		Apply: func(ctx context.Context) error {
			line := "systemctl restart lxc-net"
			if !p.Facts.Systemd {
				line = "service lxc-net restart"
			}
			_, err := Sh(ctx, p.VM, true, line)
			return err
		},
	}
}

// lingerStep gives the user a systemd user manager (needed for the delegated scope).
func (p *Provisioner) lingerStep() Step {
	unit := fmt.Sprintf("user@%d.service", p.Facts.UID)
	return Step{
		Name: "user systemd (linger)",
		Hint: "unprivileged containers on cgroup v2 start in a delegated scope of the user's systemd: see `labctl exec -- systemctl status " + unit + "`",
		Check: func(ctx context.Context) (bool, string, error) {
			if !p.Facts.Delegated() {
				return true, "", nil
			}
			r, err := p.VM.Run(ctx, Cmd{Line: Shf("loginctl show-user %s -p Linger --value 2>/dev/null; systemctl is-active %s", p.Spec.User, unit)})
			if err != nil {
				return false, "", err
			}
			f := strings.Fields(r.Stdout)
			return len(f) == 2 && f[0] == "yes" && f[1] == "active", "loginctl enable-linger " + p.Spec.User, nil
		},
		Apply: func(ctx context.Context) error {
			line := Shf("loginctl enable-linger %s && for i in $(seq 1 120); do systemctl is-active --quiet %s && exit 0; sleep 0.5; done; echo %s not active >&2; exit 1", p.Spec.User, unit, unit)
			_, err := Sh(ctx, p.VM, true, line)
			return err
		},
	}
}

// lxcState returns a container's state (RUNNING, STOPPED, ...) or "" when it does not exist.
func (p *Provisioner) lxcState(ctx context.Context, c *lab.Container) (string, error) {
	r, err := p.parentOf(c).Run(ctx, Cmd{Line: Shf("lxc-info -n %s -s -H 2>/dev/null || lxc-info -n %s -s 2>/dev/null | awk '{print $2}'", c.Name, c.Name)})
	if err != nil {
		return "", err
	}
	if !r.OK() {
		return "", nil
	}
	return strings.TrimSpace(r.Stdout), nil
}

// State returns the state of the named container: RUNNING, STOPPED, ... or "" when absent.
func (p *Provisioner) State(ctx context.Context, name string) (string, error) {
	c := p.Spec.Container(name)
	if c == nil {
		return "", fmt.Errorf("no container %q in the spec", name)
	}
	return p.lxcState(ctx, c)
}

func (p *Provisioner) createTopStep(c *lab.Container) Step {
	dir := p.Spec.ContainerDir(c.Name)
	return Step{
		Name: "create " + c.Name,
		Hint: "see tmp/" + p.Spec.Name + "/logs/provision.log; a half-built container is removed with `labctl exec -- lxc-destroy -n " + c.Name + "`",
		Check: func(ctx context.Context) (bool, string, error) {
			st, err := p.lxcState(ctx, c)
			if err != nil {
				return false, "", err
			}
			if st != "" {
				ok, err := Sh(ctx, p.VM, false, Shf("test -d %s/rootfs && echo yes || echo no", dir))
				return ok == "yes", "recreate " + c.Name + " (rootfs missing)", err
			}
			return false, fmt.Sprintf("lxc-create -n %s -B %s -t %s", c.Name, c.Backing, c.Image.Type), nil
		},
		Apply: func(ctx context.Context) error {
			// A failed earlier create leaves the directory half-built: clean it first.
			if _, err := p.VM.Run(ctx, Cmd{Line: Shf("if [ -e %s ]; then lxc-destroy -n %s || rm -rf %s; fi", dir, c.Name, dir)}); err != nil {
				return err
			}
			args := []string{"lxc-create", "-n", c.Name, "-B", c.Backing}
			switch c.Image.Type {
			case "local":
				remote, err := p.uploadImage(ctx, c)
				if err != nil {
					return err
				}
				args = append(args, "-t", "local", "--", "--metadata", remote+"/meta.tar.xz", "--fstree", remote+"/rootfs.tar.xz")
			default:
				args = append(args, templateArgs(c.Image)...)
			}
			_, err := Must(ctx, p.VM, Cmd{Line: Join(args...), Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			return err
		},
	}
}

// templateArgs are lxc-create's template arguments for the image sources that need no upload.
func templateArgs(im lab.Image) []string {
	switch im.Type {
	case "download":
		return []string{"-t", "download", "--", "-d", im.Dist, "-r", im.Release, "-a", im.Arch}
	case "template":
		return []string{"-t", im.Template}
	}
	return []string{"-t", "busybox"}
}

// uploadImage builds (or takes from the cache) the container's image on the host and uploads
// it, verified, unless the guest already has this very image. It returns the remote directory.
func (p *Provisioner) uploadImage(ctx context.Context, c *lab.Container) (string, error) {
	if p.Comm == nil {
		return "", errors.New("no SSH connection to upload the image over")
	}
	g, err := p.render(ctx)
	if err != nil {
		return "", err
	}
	img, err := lab.BuildImage(ctx, lab.ImageRecipeFor(p.Spec, c, g), p.Opts.Out, p.Opts.Log)
	if err != nil {
		return "", err
	}
	remote := path.Join(p.Spec.Home(), ".cache/labctl/images", img.Key)
	if _, err := Sh(ctx, p.VM, false, Shf("mkdir -p %s", remote)); err != nil {
		return "", err
	}
	for _, f := range []string{img.Meta, img.Rootfs} {
		dest := path.Join(remote, path.Base(f))
		res, err := p.Comm.UploadFile(ctx, f, dest, 0o644, p.Opts.Out)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(p.Opts.Out, "  upload %s: %d MB in %s, sha256 verified\n", path.Base(f), res.Bytes>>20, res.Duration.Round(100*time.Millisecond))
	}
	return remote, nil
}

// startLog is where a container's lxc-start debug log is kept on its parent: in the lab
// user's cache on the VM for a container of the VM, in /var/log of the parent container for a
// nested one. Its base name is also the file's name under tmp/<lab>/logs/.
func startLog(s *lab.Spec, c *lab.Container) string {
	name := c.Name + "-lxc-start.log"
	if c.Parent != "" {
		return "/var/log/" + name
	}
	return path.Join(s.Home(), ".cache/labctl/logs", name)
}

// startStep starts a container with a debug log, and waits until it runs.
func (p *Provisioner) startStep(c *lab.Container) Step {
	guestLog := startLog(p.Spec, c)
	logName := path.Base(guestLog)
	return Step{
		Name: "start " + c.Name,
		Hint: "read tmp/" + p.Spec.Name + "/logs/" + logName + " (lxc-start's debug log), or run `labctl logs`",
		Check: func(ctx context.Context) (bool, string, error) {
			st, err := p.lxcState(ctx, c)
			return st == "RUNNING", "lxc-start -n " + c.Name, err
		},
		Apply: func(ctx context.Context) error {
			var err error
			if c.Parent == "" {
				start := "lxc-start"
				if c.Unprivileged && p.Facts.Delegated() {
					start = "env " + Join(userBusEnv(p.Facts.UID)...) + " " + Join(delegatedScope("lxc-start")...)
				}
				line := Shf("mkdir -p %s && rm -f %s && ", path.Dir(guestLog), guestLog) + start + Shf(" -n %s -d --logfile %s --logpriority DEBUG", c.Name, guestLog)
				_, err = Must(ctx, p.VM, Cmd{Line: line, Stdout: p.Opts.Log, Stderr: p.Opts.Log})
				p.keepLog(ctx, p.VM, guestLog, logName)
			} else {
				parent := p.target(c.Parent)
				_, err = Must(ctx, parent, Cmd{Line: Shf("lxc-start -n %s -d --logfile %s --logpriority DEBUG", c.Name, guestLog), Stdout: p.Opts.Log, Stderr: p.Opts.Log})
				p.keepLog(ctx, parent, guestLog, logName)
			}
			if err != nil {
				return err
			}
			_, err = Must(ctx, p.parentOf(c), Cmd{Line: Shf("lxc-wait -n %s -s RUNNING -t 60", c.Name)})
			return err
		},
	}
}

// keepLog copies a guest log into tmp/<lab>/logs/.
func (p *Provisioner) keepLog(ctx context.Context, t Target, guestPath, name string) {
	r, err := t.Run(ctx, Cmd{Line: Shf("cat %s", guestPath), Sudo: true})
	if err != nil || p.Lab == nil {
		return
	}
	_ = os.WriteFile(p.Lab.Path("logs", name), []byte(r.Stdout), 0o644)
}

// addressStep waits until the container has booted and has an IPv4 address on eth0.
func (p *Provisioner) addressStep(c *lab.Container) Step {
	return Step{
		Name: c.Name + " address",
		Hint: "check " + p.Spec.Network.Link + " in the VM and DHCP in " + c.Name + " (`labctl exec --level " + c.Name + " -- ip addr`)",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.target(c.Name).Run(ctx, Cmd{Line: "ip -4 -o addr show dev eth0 scope global"})
			if err != nil {
				return false, "", err
			}
			return r.OK() && strings.Contains(r.Stdout, "inet "), "wait for DHCP on eth0", nil
		},
		Apply: func(ctx context.Context) error {
			line := "for i in $(seq 1 120); do ip -4 -o addr show dev eth0 scope global | grep -q 'inet ' && exit 0; sleep 0.5; done; " +
				"ifup --force eth0 >/dev/null 2>&1 || true; for i in $(seq 1 60); do ip -4 -o addr show dev eth0 scope global | grep -q 'inet ' && exit 0; sleep 0.5; done; echo no IPv4 address on eth0 >&2; exit 1"
			_, err := Must(ctx, p.target(c.Name), Cmd{Line: line})
			return err
		},
	}
}

// lxcInsideStep makes sure the nesting container has LXC to run its own containers.
func (p *Provisioner) lxcInsideStep(c *lab.Container) Step {
	return Step{
		Name: "lxc inside " + c.Name,
		Hint: "images labctl builds carry lxc; a downloaded image needs the internet for apt-get",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.target(c.Name).Run(ctx, Cmd{Line: "command -v lxc-create >/dev/null"})
			return err == nil && r.OK(), "apt-get install lxc in " + c.Name, err
		},
		Apply: func(ctx context.Context) error {
			_, err := Must(ctx, p.target(c.Name), Cmd{Line: "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y lxc", Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			return err
		},
	}
}

func (p *Provisioner) createNestedStep(c *lab.Container) Step {
	return Step{
		Name: "create " + c.Name + " in " + c.Parent,
		Hint: "see tmp/" + p.Spec.Name + "/logs/provision.log",
		Check: func(ctx context.Context) (bool, string, error) {
			st, err := p.lxcState(ctx, c)
			return st != "", fmt.Sprintf("lxc-create -n %s -t %s inside %s", c.Name, c.Image.Type, c.Parent), err
		},
		Apply: func(ctx context.Context) error {
			line := Join(append([]string{"lxc-create", "-n", c.Name, "-B", c.Backing}, templateArgs(c.Image)...)...)
			if lxcV := p.Facts.LXC(); c.Image.Type == "busybox" && lxcV != nil && lxcV.LessThan(version.Must(version.NewVersion("5.0"))) {
				// LXC < 5's busybox template mknods /dev entries, which a user namespace (box1)
				// forbids; LXC's autodev creates them at start anyway, so the template runs
				// with a mknod that does nothing.
				line = "d=$(mktemp -d) && printf '#!/bin/sh\\nexit 0\\n' > \"$d/mknod\" && chmod +x \"$d/mknod\" && PATH=\"$d:$PATH\" " + line + "; rc=$?; rm -rf \"$d\"; exit $rc"
			}
			_, err := Must(ctx, p.target(c.Parent), Cmd{Line: line, Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			return err
		},
	}
}

// InitPID returns the PID, seen from the VM, of a container of the VM's init.
func (p *Provisioner) InitPID(ctx context.Context, name string) (int, error) {
	out, err := Sh(ctx, p.VM, false, Shf("lxc-info -n %s -p -H", name))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// ManagedFile is a file the provisioner manages, on the target that holds it.
type ManagedFile struct {
	Target Target
	Path   string
}

// ManagedFiles lists every file the provisioner writes or appends to.
func (p *Provisioner) ManagedFiles(ctx context.Context) ([]ManagedFile, error) {
	g, err := p.render(ctx)
	if err != nil {
		return nil, err
	}
	var out []ManagedFile
	for _, f := range g {
		var t Target = p.VM
		if f.Target != "" {
			t = p.target(f.Target)
		}
		out = append(out, ManagedFile{Target: t, Path: f.Path})
	}
	return out, nil
}
