package provision

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// lxcState returns a container's state (RUNNING, STOPPED, ...) or "" when it does not exist.
func (p *Provisioner) lxcState(ctx context.Context, c *spec.Container) (string, error) {
	r, err := p.parentOf(c).Run(ctx, remote.Cmd{Line: lxc.StateCommand(remote.Quote(c.Name))})
	if err != nil {
		return "", err
	}
	if !r.OK() {
		return "", nil
	}
	return strings.TrimSpace(r.Stdout), nil
}

// State returns the state of the named container: RUNNING, STOPPED, ... or "" when absent;
// a guest that gives no answer in CheckDeadline is a SilentError.
func (p *Provisioner) State(ctx context.Context, name string) (string, error) {
	c := p.Spec.Container(name)
	if c == nil {
		return "", fmt.Errorf("no container %q in the spec", name)
	}
	var state string
	err := within(ctx, CheckDeadline, func(ctx context.Context) error {
		var err error
		state, err = p.lxcState(ctx, c)
		return err
	})
	return state, err
}

func (p *Provisioner) createTopStep(c *spec.Container) Step {
	dir := p.Spec.ContainerDir(c.Name)
	return Step{
		Name: "create " + c.Name,
		Hint: "see tmp/" + p.Spec.Name + "/logs/provision.log; a half-built container is removed with `labctl exec -- lxc-destroy -n " + c.Name + "`",
		Check: func(ctx context.Context) (bool, string, error) {
			create := fmt.Sprintf("lxc-create -n %s -B %s -t %s", c.Name, c.Backing, c.Image.Type)
			half, err := p.halfBuilt(ctx, p.VM, dir)
			if err != nil || half != "" {
				return false, "destroy the half-built " + c.Name + " (" + half + "), then " + create, err
			}
			st, err := p.lxcState(ctx, c)
			if err != nil || st != "" {
				return st != "", "", err
			}
			return false, create, nil
		},
		Apply: func(ctx context.Context) error {
			// An interrupted or failed earlier create leaves the directory half-built: remove it.
			if _, err := remote.Must(ctx, p.VM, remote.Cmd{Line: remote.Shf("if [ -e %s ]; then lxc-destroy -n %s || rm -rf %s; fi", dir, c.Name, dir)}); err != nil {
				return err
			}
			args := []string{"lxc-create", "-n", c.Name, "-B", c.Backing}
			switch c.Image.Type {
			case "local":
				dir, img, err := p.image(ctx, c)
				if err != nil {
					return err
				}
				args = append(args, "-t", path.Join(dir, lxc.ImageTemplateName), "--",
					"--metadata", path.Join(dir, path.Base(img.Meta)), "--fstree", path.Join(dir, path.Base(img.Rootfs)))
			default:
				args = append(args, templateArgs(c.Image)...)
			}
			_, err := remote.Must(ctx, p.VM, remote.Cmd{Line: remote.Join(args...), Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			return err
		},
	}
}

// templateArgs are lxc-create's template arguments for the image sources that need no upload.
func templateArgs(im spec.Image) []string {
	switch im.Type {
	case "download":
		return []string{"-t", "download", "--", "-d", im.Dist, "-r", im.Release, "-a", im.Arch}
	case "template":
		return []string{"-t", im.Template}
	}
	return []string{"-t", "busybox"}
}

// startLog is where a container's lxc-start debug log is kept on its parent: in the lab
// user's cache on the VM for a container of the VM, in /var/log of the parent container for a
// nested one. Its base name is also the file's name under tmp/<lab>/logs/.
func startLog(s *spec.Spec, c *spec.Container) string {
	name := c.Name + "-lxc-start.log"
	if c.Parent != "" {
		return "/var/log/" + name
	}
	return path.Join(s.Home(), ".cache/labctl/logs", name)
}

// startStep starts a container with a debug log, and waits until it runs.
func (p *Provisioner) startStep(c *spec.Container) Step {
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
			start := "lxc-start"
			if c.Parent == "" && c.Unprivileged {
				start = UserLXC(p.Facts, "lxc-start")
			}
			// A container that autostarts may be starting already (after a reboot): a start
			// that fails because of it is no failure once the container runs.
			line := remote.Shf("mkdir -p %s && rm -f %s && ", path.Dir(guestLog), guestLog) + start +
				remote.Shf(" -n %s -d --logfile %s --logpriority DEBUG || lxc-wait -n %s -s RUNNING -t 10", c.Name, guestLog, c.Name)
			parent := p.parentOf(c)
			_, err := remote.Must(ctx, parent, remote.Cmd{Line: line, Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			p.keepLog(ctx, parent, guestLog, logName)
			if err != nil {
				p.startEvidence(ctx, parent, c, start, guestLog)
				return err
			}
			_, err = remote.Must(ctx, p.parentOf(c), remote.Cmd{Line: remote.Shf("lxc-wait -n %s -s RUNNING -t 60", c.Name)})
			return err
		},
	}
}

// startEvidence is what a failed start leaves for the one who reads why: the start tried once
// more with LXC's trace log (kept as NAME-lxc-start-trace.log; a container that starts then
// stays up, and the next up finds it running), and the VM kernel's AppArmor denials
// (NAME-apparmor-denials.txt), in the lab's logs.
func (p *Provisioner) startEvidence(ctx context.Context, parent remote.Target, c *spec.Container, start, guestLog string) {
	if p.Opts.LogDir == "" {
		return
	}
	trace := strings.TrimSuffix(guestLog, ".log") + "-trace.log"
	line := remote.Shf("rm -f %s && ", trace) + start + remote.Shf(" -n %s -d --logfile %s --logpriority TRACE", c.Name, trace)
	_, _ = parent.Run(ctx, remote.Cmd{Line: line, Stdout: p.Opts.Log, Stderr: p.Opts.Log})
	p.keepLog(ctx, parent, trace, path.Base(trace))
	r, err := p.VM.Run(ctx, remote.Cmd{Line: `dmesg | grep -F 'apparmor="DENIED"' | tail -n 100`, Sudo: true})
	if err == nil {
		_ = host.WriteFileAtomic(filepath.Join(p.Opts.LogDir, c.Name+"-apparmor-denials.txt"), []byte(r.Stdout), 0o644)
	}
}

// keepLog copies a guest log into Options.LogDir (tmp/<lab>/logs/), when there is one.
func (p *Provisioner) keepLog(ctx context.Context, t remote.Target, guestPath, name string) {
	if p.Opts.LogDir == "" {
		return
	}
	r, err := t.Run(ctx, remote.Cmd{Line: remote.Shf("cat %s", guestPath), Sudo: true})
	if err != nil {
		return
	}
	_ = host.WriteFileAtomic(filepath.Join(p.Opts.LogDir, name), []byte(r.Stdout), 0o644)
}

// addressStep waits until the container has booted and has an IPv4 address on eth0.
func (p *Provisioner) addressStep(c *spec.Container) Step {
	return Step{
		Name: c.Name + " address",
		Hint: "check " + p.Spec.Network.Link + " in the VM and DHCP in " + c.Name + " (`labctl exec --level " + c.Name + " -- ip addr`)",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.target(c.Name).Run(ctx, remote.Cmd{Line: "ip -4 -o addr show dev eth0 scope global"})
			if err != nil {
				return false, "", err
			}
			return r.OK() && strings.Contains(r.Stdout, "inet "), "wait for DHCP on eth0", nil
		},
		Apply: func(ctx context.Context) error {
			line := "for i in $(seq 1 120); do ip -4 -o addr show dev eth0 scope global | grep -q 'inet ' && exit 0; sleep 0.5; done; " +
				"ifup --force eth0 >/dev/null 2>&1 || true; for i in $(seq 1 60); do ip -4 -o addr show dev eth0 scope global | grep -q 'inet ' && exit 0; sleep 0.5; done; echo no IPv4 address on eth0 >&2; exit 1"
			_, err := remote.Must(ctx, p.target(c.Name), remote.Cmd{Line: line})
			return err
		},
	}
}

// lxcInsideStep makes sure the nesting container has LXC to run its own containers.
func (p *Provisioner) lxcInsideStep(c *spec.Container) Step {
	return Step{
		Name: "lxc inside " + c.Name,
		Hint: "images labctl builds carry lxc; a downloaded image needs the internet for apt-get",
		Check: func(ctx context.Context) (bool, string, error) {
			r, err := p.target(c.Name).Run(ctx, remote.Cmd{Line: "command -v lxc-create >/dev/null"})
			return err == nil && r.OK(), "apt-get install lxc in " + c.Name, err
		},
		Apply: func(ctx context.Context) error {
			_, err := remote.Must(ctx, p.target(c.Name), remote.Cmd{Line: "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y lxc", Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			return err
		},
	}
}

func (p *Provisioner) createNestedStep(c *spec.Container) Step {
	// Inside the parent, containers live in root's lxcpath (where lxc-config says).
	dir := "\"$(lxc-config lxc.lxcpath)\"/" + remote.Quote(c.Name)
	return Step{
		Name: "create " + c.Name + " in " + c.Parent,
		Hint: "see tmp/" + p.Spec.Name + "/logs/provision.log",
		Check: func(ctx context.Context) (bool, string, error) {
			create := fmt.Sprintf("lxc-create -n %s -t %s inside %s", c.Name, c.Image.Type, c.Parent)
			if c.Image.Type == "local" {
				create += " (" + p.Spec.Top(c.Name).Name + "'s image, handed down)"
			}
			half, err := p.halfBuilt(ctx, p.target(c.Parent), dir)
			if err != nil || half != "" {
				return false, "destroy the half-built " + c.Name + " (" + half + "), then " + create, err
			}
			st, err := p.lxcState(ctx, c)
			return st != "", create, err
		},
		Apply: func(ctx context.Context) error {
			parent := p.target(c.Parent)
			clean := fmt.Sprintf("d=%s; if [ -e \"$d\" ]; then lxc-destroy -n %s || rm -rf \"$d\"; fi", dir, remote.Quote(c.Name))
			if _, err := remote.Must(ctx, parent, remote.Cmd{Line: clean}); err != nil {
				return err
			}
			if c.Image.Type == "local" {
				return p.createFromImage(ctx, c)
			}
			line := CreateLine(p.Facts, c.Name, c.Backing, c.Image)
			_, err := remote.Must(ctx, parent, remote.Cmd{Line: line, Stdout: p.Opts.Log, Stderr: p.Opts.Log})
			return err
		},
	}
}

// createFromImage creates a nested container from labctl's image: its top container's image,
// on the VM already (uploaded once, for that container), is handed down to the parent through
// the VM's own file system (a reflink copy on btrfs, owned by the parent's root), never over
// SSH again; the parent's root creates the container from it with labctl's template, and the
// copy goes again.
func (p *Provisioner) createFromImage(ctx context.Context, c *spec.Container) error {
	top := p.Spec.Top(c.Name)
	dir, img, err := p.image(ctx, top)
	if err != nil {
		return err
	}
	inParent := path.Join("/var/lib/labctl/images", img.Key)
	onVM := path.Join(p.Spec.RootfsOnVM(c.Parent), inParent)
	files := []string{lxc.ImageTemplateName, path.Base(img.Meta), path.Base(img.Rootfs)}
	var srcs []string
	for _, f := range files {
		srcs = append(srcs, path.Join(dir, f))
	}
	owner := fmt.Sprintf("%d:%d", p.Spec.IDMap.Start, p.Spec.IDMap.Start)
	hand := remote.Shf("mkdir -p %s && ", onVM) + remote.Join(append(append([]string{"cp", "--reflink=auto"}, srcs...), onVM)...) +
		remote.Shf(" && chown -R %s %s", owner, path.Join(p.Spec.RootfsOnVM(c.Parent), "/var/lib/labctl"))
	if _, err := remote.Must(ctx, p.VM, remote.Cmd{Line: hand, Sudo: true}); err != nil {
		return fmt.Errorf("hand %s's image down to %s: %w", top.Name, c.Parent, err)
	}
	defer func() {
		_, _ = p.VM.Run(context.WithoutCancel(ctx), remote.Cmd{Line: remote.Shf("rm -rf %s", onVM), Sudo: true})
	}()
	args := []string{"lxc-create", "-n", c.Name, "-B", c.Backing, "-t", path.Join(inParent, lxc.ImageTemplateName), "--",
		"--metadata", path.Join(inParent, path.Base(img.Meta)), "--fstree", path.Join(inParent, path.Base(img.Rootfs))}
	_, err = remote.Must(ctx, p.parentOf(c), remote.Cmd{Line: remote.Join(args...), Stdout: p.Opts.Log, Stderr: p.Opts.Log})
	return err
}

// halfBuilt says what is wrong with a container directory that an interrupted or failed
// lxc-create left ("" when there is none, or it is whole): LXC's partial marker, a config
// without a rootfs, or a rootfs without a config. dir is a shell word (quoted, or an
// expansion in double quotes).
func (p *Provisioner) halfBuilt(ctx context.Context, t remote.Target, dir string) (string, error) {
	line := fmt.Sprintf(`d=%s; if [ ! -e "$d" ]; then exit 0; fi
if [ -e "$d/partial" ]; then echo "LXC's partial marker"
elif [ ! -f "$d/config" ]; then echo "no config"
elif [ ! -d "$d/rootfs" ]; then echo "no rootfs"
elif [ -z "$(ls -A "$d/rootfs")" ]; then echo "an empty rootfs"; fi`, dir)
	return remote.Sh(ctx, t, true, line)
}

// CreateLine is the lxc-create command line for a container made from a template (not a local
// image), with this LXC's quirks handled: where the busybox template mknods /dev entries,
// which a user namespace forbids, it runs with a mknod that does nothing (LXC's autodev
// creates them at start anyway).
func CreateLine(f Facts, name, backing string, im spec.Image) string {
	line := remote.Join(append([]string{"lxc-create", "-n", name, "-B", backing}, templateArgs(im)...)...)
	if lxcV := f.LXC(); im.Type == "busybox" && lxcV != nil && lxcV.BusyboxMknod() {
		line = "d=$(mktemp -d) && printf '#!/bin/sh\\nexit 0\\n' > \"$d/mknod\" && chmod +x \"$d/mknod\" && PATH=\"$d:$PATH\" " + line + "; rc=$?; rm -rf \"$d\"; exit $rc"
	}
	return line
}

// UserLXC is the command an LXC tool (lxc-start, lxc-attach, ...) runs as, for the lab user's
// own unprivileged containers on the VM: inside a delegated systemd --user scope on cgroup v2
// (what Debian's lxc-unpriv-start does), else as it is. Arguments follow it.
func UserLXC(f Facts, tool string) string {
	if !f.Delegated() {
		return tool
	}
	return "env " + remote.Join(userBusEnv(f.UID)...) + " " + remote.Join(delegatedScope(tool)...)
}

// StopContainers stops the running containers cleanly, the deepest first (each with its halt
// signal, within 30 s), as a clean halt of the VM needs: the guest's own shutdown unmounts the
// data disk and takes the bridge down before the user's manager stops box1. A container that
// does not stop is left to the shutdown; the error names the first one.
func (p *Provisioner) StopContainers(ctx context.Context) error {
	var first error
	for i := len(p.Spec.Containers) - 1; i >= 0; i-- {
		c := &p.Spec.Containers[i]
		if c.Parent != "" {
			if st, err := p.lxcState(ctx, p.Spec.Container(c.Parent)); err != nil || st != "RUNNING" {
				continue
			}
		}
		if st, err := p.lxcState(ctx, c); err != nil || st != "RUNNING" {
			continue
		}
		stop := "lxc-stop"
		if c.Parent == "" && c.Unprivileged {
			stop = UserLXC(p.Facts, "lxc-stop")
		}
		if _, err := remote.Must(ctx, p.parentOf(c), remote.Cmd{Line: stop + remote.Shf(" -n %s -t 30", c.Name)}); err != nil && first == nil {
			first = fmt.Errorf("stop %s: %w", c.Name, err)
		}
	}
	return first
}
