package provision

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// Evidence is what explains a level's failure, as named files and their contents.
func Evidence(ctx context.Context, s *spec.Spec, vm remote.Target, f Facts, level string) map[string]string {
	out := map[string]string{}
	run := func(name string, t remote.Target, sudo bool, line string) {
		r, err := t.Run(ctx, remote.Cmd{Line: line, Sudo: sudo})
		switch {
		case err != nil:
			out[name] = "error: " + err.Error()
		case r.OK():
			out[name] = r.Stdout
		default:
			out[name] = fmt.Sprintf("exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
		}
	}
	targets := Targets(s, vm, f)
	switch level {
	case "host", "vm":
		run("vm-dmesg.txt", vm, true, "dmesg | tail -n 200")
		run("vm-lxc-net.txt", vm, true, "journalctl -u lxc-net --no-pager -n 100 2>/dev/null || true")
		run("vm-mounts.txt", vm, false, "findmnt; lsblk -f")
		// What the kernel refused and what it offers containers: AppArmor's denials, LXC's own
		// check of the kernel, the cgroup hierarchy and its controllers, the btrfs subvolumes.
		run("vm-apparmor-denials.txt", vm, true, `dmesg | grep -F 'apparmor="DENIED"' | tail -n 100 || true`)
		run("vm-lxc-checkconfig.txt", vm, true, `lxc-checkconfig 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || true`)
		run("vm-cgroup.txt", vm, false, "findmnt -t cgroup,cgroup2; for f in cgroup.controllers cgroup.subtree_control; do echo \"$f: $(cat /sys/fs/cgroup/$f 2>/dev/null)\"; done")
		run("vm-btrfs-subvolumes.txt", vm, true, "btrfs subvolume list "+remote.Quote(s.Btrfs.MountPoint)+" 2>&1 || true")
	default:
		c := s.Container(level)
		if c == nil {
			return out
		}
		var parent remote.Target = vm
		if c.Parent != "" {
			parent = targets[c.Parent]
		}
		guestLog := startLog(s, c)
		run(c.Name+"-lxc-info.txt", parent, false, remote.Shf("lxc-info -n %s", c.Name))
		run(path.Base(guestLog), parent, true, remote.Shf("tail -n 400 %s", guestLog))
		if t := targets[c.Name]; t != nil {
			run(c.Name+"-dmesg.txt", t, false, "dmesg 2>&1 | tail -n 50")
			run(c.Name+"-ps.txt", t, false, "ps -ef 2>&1 || true")
		}
		if c.Parent == "" {
			run(c.Name+"-uid_map.txt", vm, false, remote.Shf("cat /proc/$(lxc-info -n %s -p -H)/uid_map", c.Name))
			run(c.Name+"-cgroup.txt", vm, false, remote.Shf("p=$(lxc-info -n %s -p -H) && cat /proc/$p/cgroup && d=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$p/cgroup) && while [ \"$d\" != /sys/fs ]; do echo \"$d: $(cat $d/cgroup.controllers 2>/dev/null) / $(cat $d/cgroup.subtree_control 2>/dev/null)\"; d=${d%%/*}; done", c.Name))
		}
	}
	return out
}

// CollectLogs writes the evidence of every level into dir (tmp/<lab>/logs/) and returns the
// names.
func CollectLogs(ctx context.Context, s *spec.Spec, vm remote.Target, f Facts, dir string) ([]string, error) {
	levels := []string{"host"}
	for _, c := range s.Containers {
		levels = append(levels, c.Name)
	}
	var wrote []string
	for _, lv := range levels {
		for name, content := range Evidence(ctx, s, vm, f, lv) {
			if err := host.WriteFileAtomic(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				return wrote, err
			}
			wrote = append(wrote, name)
		}
	}
	return wrote, nil
}
