package main

import (
	"fmt"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
)

func validateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "check a lab spec, and its Vagrantfile with `vagrant validate`",
		Long: "Checks the spec field by field. Where vagrant is installed it also renders the Vagrantfile\n" +
			"into a temporary directory and runs `vagrant validate` on it; for VirtualBox on a host\n" +
			"without it, through a stub VBoxManage, so that provider-setting typos are still caught;\n" +
			"for libvirt it starts libvirtd first when nothing runs it, as `up` does.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.load()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "spec %s: valid (box %s, provider %s)\n", s.Name, s.BoxName(), s.ProviderFor())
			if _, err := exec.LookPath("vagrant"); err != nil {
				fmt.Fprintln(out, "vagrant validate: skipped, vagrant is not installed (`make deps` installs it)")
				return nil
			}
			verdict, err := lab.VagrantValidate(cmd.Context(), s, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "vagrant validate (%s): %s\n", s.ProviderFor(), verdict)
			return nil
		},
	}
}
