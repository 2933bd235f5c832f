package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/labctl/labctl/lab"
)

func init() {
	register("presets", "list the embedded presets, or print one as a complete lab.yaml", runPresets)
}

func runPresets(ctx context.Context, args []string) error {
	fs := newFlags("presets", "[show NAME]",
		"Lists the presets with the box, provider, kernel and LXC they target. `presets show NAME`\n"+
			"prints the preset as a complete lab.yaml (every field, defaults filled in) that -f accepts.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRESET\tBOX\tPROVIDER\tKERNEL\tLXC\tDEFAULT")
		for _, name := range lab.PresetNames() {
			s, err := lab.Preset(name)
			if err != nil {
				return err
			}
			def := ""
			if name == lab.DefaultPreset {
				def = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\t%s\n", name, s.BoxName(), s.ProviderFor(), s.Kernel, s.LXC.Version, s.LXC.Expect, def)
		}
		return tw.Flush()
	case fs.NArg() == 2 && fs.Arg(0) == "show":
		s, err := lab.Preset(fs.Arg(1))
		if err != nil {
			return err
		}
		data, err := s.Marshal()
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(data)
		return err
	}
	return fmt.Errorf("usage: labctl presets [show NAME]")
}
