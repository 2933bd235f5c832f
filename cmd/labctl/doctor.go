package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/host"
)

func doctorCmd(*globals) *cobra.Command {
	var fix bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "check every host prerequisite and say what to do for each missing one",
		Long:  "Checks the host: tools, libvirt, accelerator, apt sources, cache. --fix starts libvirt and creates the pool.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if fix && os.Geteuid() != 0 {
				return fmt.Errorf("--fix starts libvirt's system daemons and creates labctl's pool, which takes root: run `sudo labctl doctor --fix` (or `sudo make deps`); as a normal user labctl only names what an administrator must do")
			}
			if fix {
				if err := host.EnsureLibvirt(cmd.Context(), out); err != nil {
					fmt.Fprintln(out, "fix:", err)
				}
			}
			failed := 0
			for _, c := range host.Doctor(cmd.Context()) {
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
