package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/provision/remote"
)

func upCmd(g *globals) *cobra.Command {
	var keep, force bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "bring the lab up: host prep, box, VM, provisioning, summary per level",
		Long: "Renders the lab, builds and adds the box if missing, boots the VM with Vagrant, waits for SSH,\n" +
			"provisions it (idempotent) and prints a summary per nesting level with timings. If a later\n" +
			"phase fails, a VM this run created is destroyed, unless --keep-on-failure.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), g, cmd.OutOrStdout(), keep, force)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-on-failure", false, "keep a VM this run created when a later phase fails, for inspection")
	cmd.Flags().BoolVar(&force, "force-format", false, "let provisioning format a data disk that is not blank (destroys its data)")
	return cmd
}

func runUp(ctx context.Context, g *globals, out io.Writer, keep, force bool) error {
	total := time.Now()
	s, err := g.openSession(ctx, out, false, "up")
	if err != nil {
		return err
	}
	defer s.Close()
	// created is set by Boot: only what this run created and recorded as the lab's (the
	// domain by its UUID, its volumes) is ever removed on failure; nothing when a state could
	// not be read, and nothing that is not the lab's.
	created := false
	fail := func(err error) error {
		if !created || keep {
			if created {
				fmt.Fprintf(out, "keeping the VM for inspection (--keep-on-failure): `labctl ssh`, `labctl logs`; remove it with `labctl destroy`\n")
			}
			return err
		}
		fmt.Fprintln(out, "up failed: removing the VM this run created (use --keep-on-failure to keep it)")
		gone, derr := lab.Destroy(context.WithoutCancel(ctx), s.lab, s.vagrant)
		if derr != nil {
			fmt.Fprintf(out, "could not remove everything (%v): run `labctl destroy`\n", derr)
		} else {
			fmt.Fprintf(out, "removed: %v\n", gone)
		}
		return err
	}
	fmt.Fprintf(out, "lab %s: %s on %s\n", s.lab.Spec.Name, s.lab.Spec.BoxName(), s.lab.Spec.ProviderFor())
	booted, err := lab.Boot(ctx, s.lab, s.vagrant, out)
	created = booted.Created
	if err != nil {
		return fail(err)
	}
	phases := booted.Phases
	if booted.Before == "running" {
		// Never a silent revert: what the user did in the running lab stays; reset is the way
		// back to the snapshot (and provisions it to the new spec).
		if st, err := s.lab.LoadState(); err == nil && st.Ready != nil && st.Ready.SpecSum != s.lab.SpecSum() {
			fmt.Fprintf(out, "the spec or labctl changed since the ready snapshot (%s): provisioning the running lab in place; `labctl reset` provisions from the snapshot instead\n", st.Ready.Taken.Format("2006-01-02 15:04"))
		}
	}
	start := time.Now()
	if err := s.connect(ctx); err != nil {
		return fail(err)
	}
	phases["ssh"] = time.Since(start)
	start = time.Now()
	p, err := s.provisioner(ctx, provision.Options{ForceFormat: force, Out: out})
	if err != nil {
		return fail(err)
	}
	sum, err := p.Run(ctx)
	if err != nil {
		return fail(err)
	}
	phases["provision"] = time.Since(start)
	fmt.Fprintf(out, "\nlab %s is up in %s (host %s, box %s, vagrant up %s, ssh %s, provision %s: %s)\n",
		s.lab.Spec.Name, fmtDur(time.Since(total)), fmtDur(phases["host"]), fmtDur(phases["box"]),
		fmtDur(phases["vagrant up"]), fmtDur(phases["ssh"]), fmtDur(phases["provision"]), sum)
	if err := printLevels(ctx, out, p); err != nil {
		return err
	}
	return takeReady(ctx, s, out)
}

// takeReady takes the lab's ready snapshot after its first green provision (`labctl reset`
// reverts to it); the lab's agent ends first, so that none of its processes are in it.
func takeReady(ctx context.Context, s *session, out io.Writer) error {
	if st, err := s.lab.LoadState(); err != nil || st.Ready != nil || st.DomainUUID == "" || s.lab.Spec.ProviderFor() != "libvirt" {
		return err
	}
	start := time.Now()
	if _, err := stopAgent(ctx, s.lab); err != nil {
		return err
	}
	if _, err := s.lab.TakeReady(ctx); err != nil {
		return fmt.Errorf("the lab is up, but its ready snapshot failed (so `labctl reset` cannot work): %w", err)
	}
	fmt.Fprintf(out, "ready snapshot %s taken in %s: `labctl reset` brings the lab back to this point\n", lab.ReadySnapshot, fmtDur(time.Since(start)))
	return nil
}

// printLevels prints one line per nesting level; the levels are asked at once (a container of
// the VM in two commands at once: its state, and its init's pid with that process's uid_map),
// and printed in the spec's order.
func printLevels(ctx context.Context, out io.Writer, p *provision.Provisioner) error {
	f := p.Facts
	fmt.Fprintf(out, "  %-7s %-5s kernel %s, LXC %s, %s on %s (btrfs)\n", remote.LevelHost, "vm", f.Kernel, f.LXCVersion, p.Spec.Btrfs.MountPoint, "data disk")
	targets := provision.Targets(p.Spec, p.VM, f)
	n := len(p.Spec.Containers)
	states, extras, errs := make([]string, n), make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i, c := range p.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i], errs[i] = p.State(ctx, c.Name)
		}()
		if c.Parent != "" {
			extras[i] = ", inside " + c.Parent
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if init, err := p.InitOf(ctx, c.Name); err == nil {
				extras[i] = fmt.Sprintf(", init pid %d, uid_map %q", init.PID, strings.Join(strings.Fields(init.UIDMap), " "))
			}
		}()
	}
	wg.Wait()
	for i, c := range p.Spec.Containers {
		if errs[i] != nil {
			return errs[i]
		}
		fmt.Fprintf(out, "  %-7s %-5s %s%s\n", targets[c.Name].Level(), c.Name, stateOrAbsent(states[i]), extras[i])
	}
	return nil
}
