package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
)

func init() {
	register("up", "bring the lab up: host prep, box, VM, provisioning, summary per level", runUp)
}

func runUp(ctx context.Context, args []string) error {
	fs := newFlags("up", "[-f lab.yaml | --preset NAME] [--keep-on-failure] [--force-format]",
		"Renders the lab, builds and adds the box if missing, boots the VM with Vagrant, waits for SSH,\n"+
			"provisions it (idempotent) and prints a summary per nesting level with timings.")
	var sf specFlags
	var cf connFlags
	sf.add(fs)
	cf.add(fs)
	keep := fs.Bool("keep-on-failure", false, "keep a VM this run created when a later phase fails, for inspection")
	force := fs.Bool("force-format", false, "let provisioning format a data disk that is not blank (destroys its data)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	total := time.Now()
	s, err := openSession(ctx, &sf, &cf, os.Stdout, false)
	if err != nil {
		return err
	}
	defer s.Close()
	before, _ := s.vagrant.Status(ctx)
	created := before == "" || before == "not_created"
	fail := func(err error) error {
		if !created || *keep {
			if created {
				fmt.Printf("keeping the VM for inspection (--keep-on-failure): `labctl ssh`, `labctl logs`; remove it with `labctl destroy`\n")
			}
			return err
		}
		fmt.Println("up failed: removing the VM this run created (use --keep-on-failure to keep it)")
		gone, derr := lab.Destroy(context.WithoutCancel(ctx), s.lab, s.vagrant)
		if derr != nil {
			fmt.Printf("could not remove everything (%v): run `labctl destroy`\n", derr)
		} else {
			fmt.Printf("removed: %v\n", gone)
		}
		return err
	}
	fmt.Printf("lab %s: %s on %s\n", s.lab.Spec.Name, s.lab.Spec.BoxName(), s.lab.Spec.ProviderFor())
	phases, err := lab.Boot(ctx, s.lab, s.vagrant, os.Stdout)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	if err := s.connect(ctx, &cf); err != nil {
		return fail(err)
	}
	phases["ssh"] = time.Since(start)
	start = time.Now()
	p, err := s.provisioner(ctx, provision.Options{ForceFormat: *force, Out: os.Stdout})
	if err != nil {
		return fail(err)
	}
	sum, err := p.Run(ctx)
	if err != nil {
		return fail(err)
	}
	phases["provision"] = time.Since(start)
	fmt.Printf("\nlab %s is up in %s (host %s, box %s, vagrant up %s, ssh %s, provision %s: %s)\n",
		s.lab.Spec.Name, fmtDur(time.Since(total)), fmtDur(phases["host"]), fmtDur(phases["box"]),
		fmtDur(phases["vagrant up"]), fmtDur(phases["ssh"]), fmtDur(phases["provision"]), sum)
	return printLevels(ctx, p)
}

// printLevels prints one line per nesting level.
func printLevels(ctx context.Context, p *provision.Provisioner) error {
	f := p.Facts
	fmt.Printf("  %-7s %-5s kernel %s, LXC %s, %s on %s (btrfs)\n", provision.LevelHost, "vm", f.Kernel, f.LXCVersion, p.Spec.Btrfs.MountPoint, "data disk")
	targets := provision.Targets(p.Spec, p.VM, f)
	for _, c := range p.Spec.Containers {
		st, err := p.State(ctx, c.Name)
		if err != nil {
			return err
		}
		extra := ""
		if c.Parent == "" {
			if pid, err := p.InitPID(ctx, c.Name); err == nil {
				m, _ := provision.Sh(ctx, p.VM, false, fmt.Sprintf("cat /proc/%d/uid_map", pid))
				extra = fmt.Sprintf(", init pid %d, uid_map %q", pid, strings.Join(strings.Fields(m), " "))
			}
		} else {
			extra = ", inside " + c.Parent
		}
		fmt.Printf("  %-7s %-5s %s%s\n", targets[c.Name].Level(), c.Name, orDash(st), extra)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}
