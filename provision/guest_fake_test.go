package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/provision/remote"
)

// fakeGuest is a model of a lab's VM and its containers that understands, command by command,
// what the provisioner's steps send, and changes its state as the real guest would. It also
// knows what each command leaves when it is cut off half-way ("partial"). A command it does
// not know is an error, so a new step cannot go untested.
type fakeGuest struct {
	files      map[string]string // "target:path" -> content ("" target: the VM)
	meta       map[string]string // "target:path" -> "owner mode"
	fs, label  string            // the data disk's filesystem and label
	uuid       string
	mounted    string // the mount options of /mnt, "" when not mounted
	owner      string // owner of the mount point
	bridge     bool
	linger     bool
	enabled    bool                      // the autostart unit
	reloads    int                       // systemctl daemon-reload (system)
	sshdReload int                       // sshd -t && systemctl reload ssh
	containers map[string]*fakeContainer // "parent/name"
	uploaded   map[string]bool
	log        []string
	// passwd and group are the guest's users and groups ("name:id" lines); mpState is what
	// the mount point is before labctl mounts it (absent, empty or full).
	passwd, group, mpState string
	// denyStart names a container whose start the guest's kernel refuses (as AppArmor does
	// when the lxc-start profile lacks userns), with a denial in its kernel log.
	denyStart string
}

type fakeContainer struct {
	partial, running bool
}

func newFakeGuest() *fakeGuest {
	return &fakeGuest{
		files:      map[string]string{":/etc/subuid": "vagrant:100000:65536\n", ":/etc/subgid": "vagrant:100000:65536\n", ":/etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n", ":/etc/lxc/lxc-usernet": ""},
		meta:       map[string]string{},
		owner:      "root:root",
		passwd:     "root:0\nvagrant:1000\nnobody:65534\n",
		group:      "root:0\nvagrant:1000\nnogroup:65534\n",
		mpState:    "empty",
		containers: map[string]*fakeContainer{},
		uploaded:   map[string]bool{},
	}
}

// snapshot is the guest's whole state, to compare two guests.
func (g *fakeGuest) snapshot() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(g.files)) {
		fmt.Fprintf(&b, "file %s %s\n%s\n", k, g.meta[k], g.files[k])
	}
	for _, k := range slices.Sorted(maps.Keys(g.containers)) {
		fmt.Fprintf(&b, "container %s %+v\n", k, *g.containers[k])
	}
	fmt.Fprintf(&b, "disk %s %s %s mounted %q owner %s bridge %v linger %v autostart %v\n", g.fs, g.label, g.uuid, g.mounted, g.owner, g.bridge, g.linger, g.enabled)
	// Each mkfs makes a new UUID: what matters is that everything names the current one.
	return strings.ReplaceAll(b.String(), g.uuid, "<current-uuid>")
}

// unwrap undoes what VM and Container targets wrap around a command line: it returns the
// target the line runs on ("" for the VM, else the container's name) and the line itself.
func unwrap(cmd string) (target, line string, err error) {
	cmd = strings.TrimPrefix(cmd, "sudo -n ")
	rest, ok := strings.CutPrefix(cmd, "sh -c ")
	if !ok {
		return "", "", fmt.Errorf("not a target's command: %q", cmd)
	}
	line, err = unquote(rest)
	if err != nil {
		return "", "", err
	}
	for {
		m := attachRE.FindStringSubmatch(line)
		if m == nil {
			return target, line, nil
		}
		target = m[1]
		if line, err = unquote(m[2]); err != nil {
			return "", "", err
		}
	}
}

var attachRE = regexp.MustCompile(`(?s)^(?:env \S+ \S+ )?(?:systemd-run --user --scope --quiet -p Delegate=yes )?lxc-attach -n (\S+) --clear-env --set-var \S+ -- sh -c (.*)$`)

// unquote reads one shell word as remote.Quote writes it.
func unquote(w string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		switch c := w[i]; c {
		case '\'':
			j := strings.IndexByte(w[i+1:], '\'')
			if j < 0 {
				return "", fmt.Errorf("unterminated quote in %q", w)
			}
			b.WriteString(w[i+1 : i+1+j])
			i += j + 1
		case '\\':
			i++
			if i < len(w) {
				b.WriteByte(w[i])
			}
		case ' ':
			return "", fmt.Errorf("more than one word in %q", w)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// rule is one kind of command the model understands: run changes the state; partial (nil
// when the command cannot be cut half-way in a way that matters) leaves what an interrupted
// run leaves.
type rule struct {
	re      *regexp.Regexp
	run     func(g *fakeGuest, target string, m []string, stdin string) remote.Result
	partial func(g *fakeGuest, target string, m []string, stdin string)
}

func ok(out string) remote.Result   { return remote.Result{Stdout: out} }
func fail(msg string) remote.Result { return remote.Result{Stderr: msg, ExitCode: 1} }

func (g *fakeGuest) file(target, p string) (string, bool) {
	c, ok := g.files[target+":"+p]
	return c, ok
}

func (g *fakeGuest) ctr(target, name string) *fakeContainer { return g.containers[target+"/"+name] }

// lxcDir is where a container's directory is on its parent, as the steps name it.
func lxcDir(target, name string) string {
	if target == "" {
		return "/mnt/" + name
	}
	return `"$(lxc-config lxc.lxcpath)"/` + name
}

// createContainer makes a whole container (or, cut off, a half-built one).
func (g *fakeGuest) createContainer(target, name string, partial bool) remote.Result {
	if g.ctr(target, name) != nil {
		return fail(name + " already exists")
	}
	g.containers[target+"/"+name] = &fakeContainer{partial: partial}
	if target == "" {
		g.files[":/mnt/"+name+"/config"] = "lxc.include = /usr/share/lxc/config/common.conf\n"
		g.meta[":/mnt/"+name+"/config"] = "vagrant:vagrant 644"
	} else {
		g.files[target+":/var/lib/lxc/"+name+"/config"] = "lxc.include = /usr/share/lxc/config/common.conf\n"
		g.meta[target+":/var/lib/lxc/"+name+"/config"] = "root:root 640"
	}
	return ok("")
}

func (g *fakeGuest) destroyContainer(target, name string) {
	delete(g.containers, target+"/"+name)
	for k := range g.files {
		if strings.HasPrefix(k, ":/mnt/"+name+"/") || strings.HasPrefix(k, name+":") || strings.HasPrefix(k, target+":/var/lib/lxc/"+name+"/") {
			delete(g.files, k)
			delete(g.meta, k)
		}
	}
	for k := range g.containers {
		if strings.HasPrefix(k, name+"/") {
			delete(g.containers, k)
		}
	}
}

var rules = []rule{
	{re: regexp.MustCompile(`^echo kernel=\$\(uname -r\)`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		return ok("kernel=6.1.0-41-amd64\ndistro=debian\nrelease=bookworm\nlxc=5.0.2\ncgroup=v2\napparmor=Y\nsystemd=yes\nuserns_max=63000\nuserns_clone=1\nuid=1000\n")
	}},
	{re: regexp.MustCompile(`^getent passwd \| cut -d: -f1,3; echo --; getent group`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		state := g.mpState
		if g.mounted != "" {
			state = "mounted"
		}
		return ok(g.passwd + "--\n" + g.group + "--\n" + g.files[":/etc/subuid"] + "--\n" + g.files[":/etc/subgid"] + "--\n" + state + "\n")
	}},
	{re: regexp.MustCompile(`^dpkg-query -W -f '\$\{Package\} \$\{db:Status-Status\}\\n' (.*) 2>/dev/null \|\| true$`), run: func(g *fakeGuest, _ string, m []string, _ string) remote.Result {
		var b strings.Builder
		for _, p := range strings.Fields(m[1]) {
			fmt.Fprintf(&b, "%s installed\n", p)
		}
		return ok(b.String())
	}},
	{re: regexp.MustCompile(`^udevadm settle 2>/dev/null; lsblk -J -b`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		data, err := os.ReadFile("testdata/lsblk-libvirt.json")
		if err != nil {
			return fail(err.Error())
		}
		return ok(string(data))
	}},
	{re: regexp.MustCompile(`^blkid -p -o export /dev/sda \|\| true$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if g.fs == "" {
			return ok("")
		}
		label := ""
		if g.label != "" {
			label = "LABEL=" + g.label + "\n"
		}
		return ok("DEVNAME=/dev/sda\n" + label + "UUID=" + g.uuid + "\nTYPE=" + g.fs + "\n")
	}},
	{re: regexp.MustCompile(`^wipefs -n -O TYPE --noheadings /dev/sda; lsblk`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { return ok(g.fs) }},
	{re: regexp.MustCompile(`^mkdir -p /var/lib/labctl && echo /dev/sda > (\S+) && mkfs\.btrfs -f -L labctl /dev/sda && rm -f (\S+)$`),
		run: func(g *fakeGuest, _ string, m []string, _ string) remote.Result {
			g.fs, g.label, g.uuid = "btrfs", "labctl", fmt.Sprintf("0f2c6f6e-%04d-4a3b-9c1d-2e7e0d1b5a77", len(g.log))
			delete(g.files, ":"+m[1])
			return ok("")
		},
		partial: func(g *fakeGuest, _ string, m []string, _ string) {
			g.files[":"+m[1]] = "/dev/sda\n"
			g.fs, g.label, g.uuid = "btrfs", "", "half-written"
		}},
	{re: regexp.MustCompile(`^cat (\S+) 2>/dev/null \|\| true$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		c, _ := g.file(t, m[1])
		return ok(c)
	}},
	{re: regexp.MustCompile(`^if \[ -e (\S+) \]; then echo leftover; fi; if \[ -f (\S+) \]; then echo \$\(sha256sum`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		out := ""
		if _, ok := g.file(t, m[1]); ok {
			out = "leftover "
		}
		if c, ok := g.file(t, m[2]); ok {
			sum := sha256.Sum256([]byte(c))
			out += hex.EncodeToString(sum[:]) + " " + g.meta[t+":"+m[2]]
		}
		return ok(out)
	}},
	{re: regexp.MustCompile(`^if \[ -e (\S+) \]; then echo leftover; else echo clean; fi; cat (\S+) 2>/dev/null \|\| true$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		out := "clean\n"
		if _, ok := g.file(t, m[1]); ok {
			out = "leftover\n"
		}
		c, _ := g.file(t, m[2])
		return ok(out + c)
	}},
	{re: regexp.MustCompile(`^(?:runuser -u \S+ -- )?mkdir -p \S+ && cat > (\S+) && chown (\S+) \S+ && chmod (\d+) \S+ && \{ mv -f \S+ (\S+) 2>/dev/null \|\| \{ cat \S+ > \S+ && rm -f \S+; \}; \}$`),
		run: func(g *fakeGuest, t string, m []string, stdin string) remote.Result {
			delete(g.files, t+":"+m[1])
			g.files[t+":"+m[4]] = stdin
			g.meta[t+":"+m[4]] = m[2] + " " + m[3]
			return ok("")
		},
		partial: func(g *fakeGuest, t string, m []string, stdin string) { g.files[t+":"+m[1]] = stdin[:len(stdin)/2] }},
	{re: regexp.MustCompile(`^findmnt -n -o FSTYPE,OPTIONS --mountpoint /mnt \|\| true$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if g.mounted == "" {
			return ok("")
		}
		return ok("btrfs rw,relatime," + g.mounted)
	}},
	{re: regexp.MustCompile(`^\(udevadm trigger --action=change --subsystem-match=block 2>/dev/null \|\| true\) && \(udevadm settle 2>/dev/null \|\| true\) && mkdir -p /mnt && \(systemctl daemon-reload 2>/dev/null \|\| true\) && if mountpoint -q /mnt; then mount -o remount /mnt; else mount /mnt; fi$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		for _, l := range strings.Split(g.files[":/etc/fstab"], "\n") {
			f := strings.Fields(l)
			if len(f) == 6 && f[1] == "/mnt" && f[0] == "UUID="+g.uuid && g.fs == "btrfs" {
				g.mounted = strings.TrimPrefix(f[3], "defaults,")
				return ok("")
			}
		}
		return remote.Result{Stderr: "mount: /mnt: can't find in /etc/fstab.", ExitCode: 32}
	}},
	{re: regexp.MustCompile(`^stat -c %U:%G /mnt$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { return ok(g.owner) }},
	{re: regexp.MustCompile(`^chown (\S+) /mnt$`), run: func(g *fakeGuest, _ string, m []string, _ string) remote.Result {
		if g.mounted == "" {
			return fail("not mounted")
		}
		g.owner = m[1]
		return ok("")
	}},
	{re: regexp.MustCompile(`^ip -4 -o addr show dev lxcbr0$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if !g.bridge {
			return remote.Result{Stderr: `Device "lxcbr0" does not exist.`, ExitCode: 1}
		}
		return ok("4: lxcbr0    inet 10.0.3.1/24 brd 10.0.3.255 scope global lxcbr0")
	}},
	{re: regexp.MustCompile(`^systemctl restart lxc-net$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		_, g.bridge = g.file("", "/etc/default/lxc-net")
		return ok("")
	}},
	{re: regexp.MustCompile(`^loginctl show-user vagrant -p Linger --value 2>/dev/null; systemctl is-active user@1000\.service$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if g.linger {
			return ok("yes\nactive\n")
		}
		return ok("no\ninactive\n")
	}},
	{re: regexp.MustCompile(`^env \S+ \S+ systemctl --user is-enabled labctl-autostart\.service$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if g.enabled {
			return ok("enabled\n")
		}
		return remote.Result{Stdout: "disabled\n", ExitCode: 1}
	}},
	{re: regexp.MustCompile(`^env \S+ \S+ systemctl --user daemon-reload && env \S+ \S+ systemctl --user enable labctl-autostart\.service$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if _, ok := g.file("", "/home/vagrant/.config/systemd/user/labctl-autostart.service"); !ok || !g.linger {
			return fail("Unit file labctl-autostart.service does not exist (or no user manager)")
		}
		g.enabled = true
		return ok("")
	}},
	{re: regexp.MustCompile(`^systemctl daemon-reload$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { g.reloads++; return ok("") }},
	{re: regexp.MustCompile(`^sshd -t && systemctl reload ssh$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		g.sshdReload++
		return ok("")
	}},
	{re: regexp.MustCompile(`^loginctl enable-linger vagrant && `), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { g.linger = true; return ok("") }},
	{re: regexp.MustCompile(`^lxc-info -n (\S+) -s -H 2>/dev/null \|\| lxc-info`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		switch c := g.ctr(t, m[1]); {
		case c == nil:
			return ok("")
		case c.running:
			return ok("RUNNING\n")
		default:
			return ok("STOPPED\n")
		}
	}},
	{re: regexp.MustCompile(`^d=(.+?); if \[ ! -e "\$d" \]; then exit 0; fi\nif \[ -e "\$d/partial" \]`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		for k, c := range g.containers {
			parent, name, _ := strings.Cut(k, "/")
			if parent == t && lxcDir(t, name) == m[1] && c.partial {
				return ok("LXC's partial marker")
			}
		}
		return ok("")
	}},
	{re: regexp.MustCompile(`^if \[ -e /mnt/(\S+) \]; then lxc-destroy -n (\S+) \|\| rm -rf /mnt/\S+; fi$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		g.destroyContainer(t, m[1])
		return ok("")
	}},
	{re: regexp.MustCompile(`^d="\$\(lxc-config lxc\.lxcpath\)"/(\S+); if \[ -e "\$d" \]; then lxc-destroy -n \S+ \|\| rm -rf "\$d"; fi$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		g.destroyContainer(t, m[1])
		return ok("")
	}},
	{re: regexp.MustCompile(`^mkdir -p /home/vagrant/\.cache/labctl/images/\S+ && cat > \S+\.new && chmod 755 \S+\.new && mv -f \S+\.new (\S+/lxc-labctl)$`),
		run: func(g *fakeGuest, _ string, m []string, stdin string) remote.Result {
			if stdin != lxc.ImageTemplate {
				return fail("the template written is not labctl's")
			}
			g.uploaded[m[1]] = true
			return ok("")
		}},
	{re: regexp.MustCompile(`^lxc-create -n (\S+) -B btrfs -t (\S+/lxc-labctl) -- --metadata (\S+/meta\.tar\.xz) --fstree (\S+/rootfs\.tar\.zst)$`),
		run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
			if !g.uploaded[m[2]] || !g.uploaded[m[3]] || !g.uploaded[m[4]] || g.owner != "vagrant:vagrant" {
				return fail("lxc-create: image missing or /mnt not the user's")
			}
			return g.createContainer(t, m[1], false)
		},
		partial: func(g *fakeGuest, t string, m []string, _ string) { g.createContainer(t, m[1], true) }},
	{re: regexp.MustCompile(`^lxc-create -n (\S+) -B dir -t busybox$`),
		run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
			return g.createContainer(t, m[1], false)
		},
		partial: func(g *fakeGuest, t string, m []string, _ string) { g.createContainer(t, m[1], true) }},
	{re: regexp.MustCompile(`^mkdir -p \S+ && rm -f \S+ && (?:env \S+ \S+ systemd-run --user --scope --quiet -p Delegate=yes )?lxc-start -n (\S+) -d --logfile \S+ --logpriority DEBUG \|\| lxc-wait -n \S+ -s RUNNING -t 10$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		c := g.ctr(t, m[1])
		switch {
		case c == nil:
			return fail("lxc-start: " + m[1] + ": No container config specified")
		case c.partial:
			return fail("lxc-start: " + m[1] + ": Failed checking for incomplete container creation")
		case m[1] == g.denyStart:
			return fail("lxc-start: " + m[1] + ": conf.c: userns_exec_mapped_root: Permission denied - Failed to unshare new user namespace")
		case t == "" && strings.Contains(g.files[":/mnt/"+m[1]+"/config"], "lxc.apparmor.profile = generated"):
			// As the lab user LXC cannot load the profile it generates (no mac_admin).
			return fail("lxc-start: " + m[1] + ": Cannot use generated profile: apparmor_parser not available")
		}
		c.running = true
		return ok("")
	}},
	{re: regexp.MustCompile(`^rm -f (\S+-lxc-start-trace\.log) && (?:env \S+ \S+ systemd-run --user --scope --quiet -p Delegate=yes )?lxc-start -n (\S+) -d --logfile (\S+) --logpriority TRACE$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		if m[1] != m[3] || m[2] != g.denyStart {
			return fail("a trace start of " + m[2] + " into another log, or of a container that starts")
		}
		g.files[t+":"+m[1]] = "lxc-start " + m[2] + " TRACE conf - userns_exec_mapped_root - Permission denied\n"
		return fail("lxc-start: " + m[2] + ": The container failed to start")
	}},
	{re: regexp.MustCompile(`^cat (\S+-lxc-start-trace\.log)$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		return ok(g.files[t+":"+m[1]])
	}},
	{re: regexp.MustCompile(`^dmesg \| grep -F 'apparmor="DENIED"' \| tail -n 100$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		if g.denyStart == "" {
			return remote.Result{ExitCode: 1}
		}
		return ok(`[  245.19] audit: type=1400 apparmor="DENIED" operation="userns_create" class="namespace" profile="/usr/bin/lxc-start" comm="lxc-start"` + "\n")
	}},
	{re: regexp.MustCompile(`^cat (\S+-lxc-start\.log)$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { return ok("lxc-start debug log\n") }},
	{re: regexp.MustCompile(`^lxc-wait -n (\S+) -s RUNNING -t 60$`), run: func(g *fakeGuest, t string, m []string, _ string) remote.Result {
		if c := g.ctr(t, m[1]); c == nil || !c.running {
			return fail("lxc-wait: timed out")
		}
		return ok("")
	}},
	{re: regexp.MustCompile(`^ip -4 -o addr show dev eth0 scope global$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result {
		return ok("2: eth0    inet 10.0.3.77/24 brd 10.0.3.255 scope global dynamic eth0")
	}},
	{re: regexp.MustCompile(`^for i in \$\(seq 1 120\); do ip -4 -o addr show dev eth0`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { return ok("") }},
	{re: regexp.MustCompile(`^command -v lxc-create >/dev/null$`), run: func(g *fakeGuest, _ string, _ []string, _ string) remote.Result { return ok("") }},
}

// exec runs one command the provisioner sent, fully or (partial) cut off half-way.
func (g *fakeGuest) exec(cmd, stdin string, partial bool) (remote.Result, bool, error) {
	target, line, err := unwrap(cmd)
	if err != nil {
		return remote.Result{}, false, err
	}
	if target != "" {
		parent := ""
		if target != "box1" {
			parent = "box1"
		}
		if c := g.ctr(parent, target); c == nil || !c.running {
			return remote.Result{Stderr: "lxc-attach: " + target + ": not running", ExitCode: 1}, false, nil
		}
	}
	g.log = append(g.log, target+"> "+line)
	for _, r := range rules {
		m := r.re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if partial {
			if r.partial == nil {
				return remote.Result{}, false, nil
			}
			r.partial(g, target, m, stdin)
			return remote.Result{}, true, nil
		}
		return r.run(g, target, m, stdin), false, nil
	}
	return remote.Result{}, false, fmt.Errorf("fake guest: no rule for %q on %q", line, target)
}

// cut says where a run is interrupted: at the k-th command (1-based) after it is armed, and
// how that command ends: not run at all, run whole (the connection then drops), or cut off
// half-way.
type cut struct {
	k    int
	mode string // before, after, partial
}

// fakeConn is the one fake connection of provision's tests: it runs commands on a fakeGuest
// (a model of the VM and its containers), or answers them from scripted rules first (on,
// answer), records what it was sent (cmds, stdin), and is the provisioner's uploader too.
// Armed with a cut, it interrupts there and fails every later command, as a cancelled context
// does.
type fakeConn struct {
	// mu makes the fake take one command at a time from checks ahead and uploads ahead.
	mu      sync.Mutex
	g       *fakeGuest
	rules   []fakeRule
	cmds    []string
	stdin   []string
	armed   *cut
	n       int
	tripped bool
	// reached reports whether the armed cut was reached (and, for partial, had an effect).
	reached bool
}

var errCut = errors.New("interrupted (context canceled)")

func (c *fakeConn) step() (cut bool, mode string) {
	if c.tripped {
		return true, "before"
	}
	if c.armed == nil {
		return false, ""
	}
	c.n++
	if c.n < c.armed.k {
		return false, ""
	}
	c.tripped = true
	return true, c.armed.mode
}

func (c *fakeConn) Run(ctx context.Context, cmd string, opts remote.RunOpts) (remote.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stdin := ""
	c.cmds = append(c.cmds, cmd)
	if opts.Stdin != nil {
		data, _ := io.ReadAll(opts.Stdin)
		stdin = string(data)
		c.stdin = append(c.stdin, stdin)
	}
	if r, ok := c.scripted(cmd); ok {
		return r, nil
	}
	isCut, mode := c.step()
	if !isCut {
		r, _, err := c.g.exec(cmd, stdin, false)
		return r, err
	}
	switch mode {
	case "after":
		if _, _, err := c.g.exec(cmd, stdin, false); err != nil {
			return remote.Result{}, err
		}
		c.reached = true
	case "partial":
		_, did, err := c.g.exec(cmd, stdin, true)
		if err != nil {
			return remote.Result{}, err
		}
		c.reached = c.reached || did
	default:
		c.reached = c.reached || c.n == c.armed.k
	}
	return remote.Result{ExitCode: -1}, errCut
}

func (c *fakeConn) UploadFile(ctx context.Context, local, dest string, mode os.FileMode, progress io.Writer) (remote.UploadResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	isCut, m := c.step()
	if isCut && m != "after" {
		c.reached = c.reached || (m == "before" && c.n == c.armed.k)
		return remote.UploadResult{}, errCut
	}
	c.g.uploaded[dest] = true
	if isCut {
		c.reached = true
		return remote.UploadResult{}, errCut
	}
	return remote.UploadResult{Bytes: 1}, nil
}

// fakeImage stands in for the host's image build: files whose names the upload uses.
func fakeImage(ctx context.Context, inside []render.GuestFile) (build.LocalImage, error) {
	return build.LocalImage{Rootfs: "/cache/images/k/rootfs.tar.zst", Meta: "/cache/images/k/meta.tar.xz", Key: "k"}, nil
}
