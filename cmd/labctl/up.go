package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
)

func upCmd(g *globals) *cobra.Command {
	var o lab.UpOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "bring the lab up: host prep, box, VM, provisioning, summary per level",
		Long: "Renders the lab, builds and adds the box if missing, boots the VM with Vagrant, waits for SSH,\n" +
			"provisions it (idempotent) and prints a summary per nesting level with timings. If a later\n" +
			"phase fails, a VM this run created is destroyed, unless --keep-on-failure.\n" +
			"A new VM whose provisioned layer is cached (the disks of a lab of the same box, spec and labctl\n" +
			"right after provisioning) boots from copy-on-write overlays of it instead, and provisioning\n" +
			"checks it (0 changed); a lab provisioned from its box keeps its layer after the ready snapshot.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			return g.withLab(func(l *lab.Lab, log io.Writer) error {
				o.Connect = g.connectOptions(log)
				r, err := l.Up(cmd.Context(), out, o)
				if err != nil {
					return err
				}
				printUp(out, l, r)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&o.Keep, "keep-on-failure", false, "keep a VM this run created when a later phase fails, for inspection")
	cmd.Flags().BoolVar(&o.ForceFormat, "force-format", false, "let provisioning format a data disk that is not blank (destroys its data)")
	cmd.Flags().BoolVar(&o.NoLayer, "no-layer", false, "provision a new VM from its box even when its provisioned layer is cached, and keep no layer")
	return cmd
}

// printUp prints what up did: the phases' times, a line per level, the ready snapshot.
func printUp(out io.Writer, l *lab.Lab, r lab.UpReport) {
	fmt.Fprintf(out, "\nlab %s is up in %s (host %s, box %s, vagrant up %s, ssh %s, provision %s: %s)\n",
		l.Spec.Name, fmtDur(r.Took), fmtDur(r.TookFor(lab.PhaseHost)), fmtDur(r.TookFor(lab.PhaseBox)),
		fmtDur(r.TookFor(lab.PhaseVM)), fmtDur(r.TookFor(lab.PhaseSSH)), fmtDur(r.TookFor(lab.PhaseProvision)), r.Summary)
	if r.Layer != "" {
		fmt.Fprintf(out, "booted from provisioned layer %s (layer %s), checked by provisioning: `labctl cache ls`\n", r.Layer, fmtDur(r.TookFor(lab.PhaseLayer)))
	}
	printLevels(out, r.Levels)
	if r.Snapshot > 0 {
		fmt.Fprintf(out, "ready snapshot %s taken in %s: `labctl reset` brings the lab back to this point\n", lab.ReadySnapshot, fmtDur(r.Snapshot))
	}
}

// printLevels prints one line per nesting level.
func printLevels(out io.Writer, levels []lab.Level) {
	width := 5
	for _, lv := range levels {
		width = max(width, len(lv.Name))
	}
	for _, lv := range levels {
		fmt.Fprintf(out, "  %-7s %-*s %s\n", lv.Level, width, lv.Name, lv.What)
	}
}
