package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCmd writes labctl's man pages, one per verb, from the CLI itself (make deb packs them).
func manCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "write labctl's man pages (section 1) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			v, _ := buildVersion()
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "LABCTL", Section: "1", Source: "labctl " + v, Manual: "labctl"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			return nil
		},
	}
}
