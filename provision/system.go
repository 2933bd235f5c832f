package provision

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/release"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"

	"github.com/labctl/labctl/provision/remote"

	"github.com/hashicorp/go-version"
)

// packages are the guest packages the lab needs; self-built boxes carry them.
func (p *Provisioner) packages() []string {
	pkgs := []string{"lxc", release.BtrfsPackage(p.Facts.Release), "uidmap"}
	if p.Spec.Box.Release != "" {
		pkgs = append(pkgs, "lxc-templates", "xz-utils", "libpam-systemd", "dbus-user-session", "dnsmasq-base")
	}
	for _, c := range p.Spec.Containers {
		if c.Image.Type == "local" && c.Parent == "" {
			// labctl's template (lxc.ImageTemplate) unpacks the image with these.
			pkgs = append(pkgs, "zstd")
			if p.Spec.Box.Release == "" {
				pkgs = append(pkgs, "xz-utils")
			}
			break
		}
	}
	return pkgs
}

// missingPackages are those of pkgs the guest has not installed.
func (p *Provisioner) missingPackages(ctx context.Context, pkgs []string) ([]string, error) {
	out, err := remote.Sh(ctx, p.VM, false, "dpkg-query -W -f '${Package} ${db:Status-Status}\\n' "+remote.Join(pkgs...)+" 2>/dev/null || true")
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

// packagesStep checks the packages the lab needs in the guest; self-built boxes carry them,
// so on those the step only checks.
func (p *Provisioner) packagesStep() Step {
	pkgs := p.packages()
	return Step{
		Name: "packages",
		Hint: "the guest needs LXC from " + orDefault(p.Spec.LXC.Suite, "its default suite") + "; with a self-built box, rebuild it (`labctl box build`)",
		Check: func(ctx context.Context) (bool, string, error) {
			m, err := p.missingPackages(ctx, pkgs)
			if err != nil {
				return false, "", err
			}
			if len(m) == 0 {
				return true, "", nil
			}
			return false, "install " + strings.Join(m, " "), nil
		},
		Apply: func(ctx context.Context) error {
			m, err := p.missingPackages(ctx, pkgs)
			if err != nil {
				return err
			}
			args := []string{"apt-get", "install", "-y", "--no-install-recommends"}
			if p.Spec.LXC.Suite != "" {
				args = append(args, "-t", p.Spec.LXC.Suite)
			}
			line := "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && " + remote.Join(append(args, m...)...)
			if _, err := remote.Must(ctx, p.VM, remote.Cmd{Line: line, Sudo: true, Stdout: p.Opts.Log, Stderr: p.Opts.Log}); err != nil {
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
				if !cons.Check(lxcV.Version) {
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
				if c.Image.Type == "local" && !lxcV.LocalImages() {
					return false, "", fmt.Errorf("containers %s: image type local needs LXC >= %s, the guest has %s", c.Name, lxc.LocalImagesSince, f.LXCVersion)
				}
			}
			if lxcV.Cgroup2Only() && f.Cgroup != "v2" {
				return false, "", fmt.Errorf("guest LXC %s runs on cgroup v2 only and the guest has cgroup %s: boot the guest with the unified hierarchy (systemd.unified_cgroup_hierarchy=1) or use an older LXC", f.LXCVersion, f.Cgroup)
			}
			if f.Cgroup == "v2" && !f.Systemd {
				return false, "", errors.New("cgroup v2 without systemd: labctl starts unprivileged containers in a delegated systemd scope")
			}
			if err := p.guestConflicts(ctx); err != nil {
				return false, "", err
			}
			return true, "", nil
		},
		Apply: func(ctx context.Context) error { return nil },
	}
}

// guestConflicts fails when the spec would harm what the guest already has: a subordinate
// range that holds an existing user's or group's id, or overlaps another user's range; a
// mount point outside /mnt, /srv, /data, /media that holds files.
func (p *Provisioner) guestConflicts(ctx context.Context) error {
	s := p.Spec
	line := remote.Shf(`getent passwd | cut -d: -f1,3; echo --; getent group | cut -d: -f1,3; echo --; cat /etc/subuid 2>/dev/null; echo --; cat /etc/subgid 2>/dev/null; echo --
mp=%s; if [ ! -e "$mp" ]; then echo absent; elif mountpoint -q "$mp"; then echo mounted; elif [ -z "$(ls -A "$mp")" ]; then echo empty; else echo full; fi`, s.Btrfs.MountPoint)
	out, err := remote.Sh(ctx, p.VM, true, line)
	if err != nil {
		return err
	}
	parts := strings.Split(out, "--\n")
	if len(parts) != 5 {
		return fmt.Errorf("preflight: unexpected answer from the guest: %q", out)
	}
	lo, hi := int64(s.IDMap.Start), int64(s.IDMap.Start)+int64(s.IDMap.Count)
	var errs []error
	for i, kind := range []string{"user", "group"} {
		for _, l := range strings.Split(strings.TrimSpace(parts[i]), "\n") {
			name, id, ok := strings.Cut(l, ":")
			n, err := strconv.ParseInt(id, 10, 64)
			if ok && err == nil && n >= lo && n < hi {
				errs = append(errs, fmt.Errorf("idmap %d-%d holds the id of the guest's %s %s (%d): pick idmap.start past it", lo, hi-1, kind, name, n))
			}
		}
	}
	for i, file := range []string{"/etc/subuid", "/etc/subgid"} {
		for _, l := range strings.Split(strings.TrimSpace(parts[2+i]), "\n") {
			f := strings.Split(l, ":")
			if len(f) != 3 || f[0] == s.User {
				continue
			}
			start, err1 := strconv.ParseInt(f[1], 10, 64)
			count, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil && start < hi && lo < start+count {
				errs = append(errs, fmt.Errorf("idmap %d-%d overlaps user %s's subordinate range in %s (%d-%d): pick another idmap.start", lo, hi-1, f[0], file, start, start+count-1))
			}
		}
	}
	if state := strings.TrimSpace(parts[4]); state == "full" && !spec.UnderMountRoot(s.Btrfs.MountPoint) {
		errs = append(errs, fmt.Errorf("btrfs.mount_point %s exists in the guest and holds files: outside %s labctl mounts the data disk only on a new or empty directory",
			s.Btrfs.MountPoint, strings.Join(spec.MountRoots, ", ")))
	}
	return errors.Join(errs...)
}

// bridgeStep makes lxc-net provide the bridge the containers' veths join.
func (p *Provisioner) bridgeStep() Step {
	link := p.Spec.Network.Link
	return Step{
		Name: "bridge " + link,
		Hint: "see `labctl exec -- sudo journalctl -u lxc-net`",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.VM.Run(ctx, remote.Cmd{Line: remote.Shf("ip -4 -o addr show dev %s", link)})
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
			_, err := remote.Sh(ctx, p.VM, true, line)
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
			r, err := p.VM.Run(ctx, remote.Cmd{Line: remote.Shf("loginctl show-user %s -p Linger --value 2>/dev/null; systemctl is-active %s", p.Spec.User, unit)})
			if err != nil {
				return false, "", err
			}
			f := strings.Fields(r.Stdout)
			return len(f) == 2 && f[0] == "yes" && f[1] == "active", "loginctl enable-linger " + p.Spec.User, nil
		},
		Apply: func(ctx context.Context) error {
			line := remote.Shf("loginctl enable-linger %s && for i in $(seq 1 120); do systemctl is-active --quiet %s && exit 0; sleep 0.5; done; echo %s not active >&2; exit 1", p.Spec.User, unit, unit)
			_, err := remote.Sh(ctx, p.VM, true, line)
			return err
		},
	}
}

// autostartStep enables the lab user's unit that starts the containers of the VM at boot
// (render.AutostartUnit, written by its file step before this one).
func (p *Provisioner) autostartStep() Step {
	user := "env " + remote.Join(userBusEnv(p.Facts.UID)...) + " systemctl --user "
	return Step{
		Name: "autostart enabled",
		Hint: "see `labctl exec -- systemctl --user status " + render.AutostartUnit + "`",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.VM.Run(ctx, remote.Cmd{Line: user + "is-enabled " + render.AutostartUnit})
			if err != nil {
				return false, "", err
			}
			return r.OK() && strings.TrimSpace(r.Stdout) == "enabled", "systemctl --user enable " + render.AutostartUnit, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := remote.Must(ctx, p.VM, remote.Cmd{Line: user + "daemon-reload && " + user + "enable " + render.AutostartUnit})
			return err
		},
	}
}
