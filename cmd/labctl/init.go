package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/spec"
)

func initCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init [--preset NAME] [-f FILE]",
		Short: "write a commented lab.yaml to start your own lab from (as `vagrant init` writes a Vagrantfile)",
		Long: "Writes ./lab.yaml (or -f FILE): the preset (default " + spec.DefaultPreset + "), complete, each field\n" +
			"with a comment. It never overwrites a file. Then edit it, `labctl validate`, `labctl up`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			preset, file := g.preset, g.file
			if preset == "" {
				preset = spec.DefaultPreset
			}
			if file == "" {
				file = "lab.yaml"
			}
			data, err := spec.Init(preset)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists: labctl init never overwrites a lab spec (remove it, or give another file with -f)", file)
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(data); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (preset %s): edit it, then `labctl validate` and `labctl up`\n", file, preset)
			return nil
		},
	}
}
