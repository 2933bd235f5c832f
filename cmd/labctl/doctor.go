package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/host"
)

func doctorCmd(g *globals) *cobra.Command {
	var fix bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "check every host prerequisite and say what to do for each missing one",
		Long: "Checks the host: tools, libvirt (the daemon the lab's libvirt setting names), accelerator, apt sources, cache.\n" +
			"--fix starts libvirt and creates labctl's pool: root for the system daemon; a normal user's own session daemon needs no root.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			choice := g.libvirt
			if s, err := g.load(); err == nil && s.ProviderInfo().Libvirt {
				choice = s.Libvirt
			} else if err != nil && g.libvirt != "" {
				return err
			}
			virt, err := host.LibvirtFor(choice)
			if err != nil {
				return err
			}
			if fix && !virt.Session && os.Geteuid() != 0 {
				return fmt.Errorf("--fix would start libvirt's system daemons and create labctl's pool there, which takes root: run `sudo labctl doctor --fix` (or `sudo make deps`), or use your own daemon (--libvirt session); as a normal user labctl only names what an administrator must do")
			}
			if fix {
				if err := virt.Ensure(cmd.Context(), out); err != nil {
					fmt.Fprintln(out, "fix:", err)
				}
			}
			failed := 0
			for _, c := range host.Doctor(cmd.Context(), virt) {
				mark := "ok  "
				if !c.OK {
					mark = "FAIL"
					failed++
				}
				fmt.Fprintf(out, "%s %-28s %s\n", mark, c.Name, c.Detail)
				if !c.OK && c.Hint != "" {
					fmt.Fprintf(out, "     -> %s\n", c.Hint)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d check(s) failed: see the hints above (`make deps` installs the host packages)", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fix, "fix", false, "start libvirt daemons and create labctl's storage pool when missing")
	return cmd
}
