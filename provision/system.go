package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/release"

	"github.com/labctl/labctl/provision/remote"

	"github.com/hashicorp/go-version"
)

// packagesStep checks the packages the lab needs in the guest; self-built boxes carry them,
// so on those the step only checks.
func (p *Provisioner) packagesStep() Step {
	pkgs := []string{"lxc", release.BtrfsPackage(p.Facts.Release), "uidmap"}
	if p.Spec.Box.Release != "" {
		pkgs = append(pkgs, "lxc-templates", "xz-utils", "libpam-systemd", "dbus-user-session", "dnsmasq-base")
	}
	missing := func(ctx context.Context) ([]string, error) {
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
			if f.Cgroup == "v2" && !f.Systemd {
				return false, "", errors.New("cgroup v2 without systemd: labctl starts unprivileged containers in a delegated systemd scope")
			}
			return true, "", nil
		},
		Apply: func(ctx context.Context) error { return nil },
	}
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
