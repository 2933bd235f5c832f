package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/spec"
)

func presetsCmd(*globals) *cobra.Command {
	presets := &cobra.Command{
		Use:   "presets",
		Short: "list the embedded presets, or print one as a complete lab.yaml",
		Long: "Lists the presets with the box, provider, kernel and LXC they target. `presets show NAME`\n" +
			"prints the preset as a complete lab.yaml (every field, defaults filled in) that -f accepts.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PRESET\tBOX\tPROVIDER\tKERNEL\tLXC\tDEFAULT")
			for _, name := range spec.PresetNames() {
				s, err := spec.Preset(name)
				if err != nil {
					return err
				}
				def := ""
				if name == spec.DefaultPreset {
					def = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\t%s\n", name, s.BoxName(), s.ProviderFor(), s.Kernel, s.LXC.Version, s.LXC.Expect, def)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:       "show NAME",
		Short:     "print a preset as a complete lab.yaml",
		Args:      cobra.ExactArgs(1),
		ValidArgs: spec.PresetNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := spec.Preset(args[0])
			if err != nil {
				return err
			}
			data, err := s.Marshal()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	presets.AddCommand(show)
	return presets
}
