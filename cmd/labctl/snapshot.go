package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func snapshotCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:       "snapshot save|restore NAME",
		Short:     "save or restore a named snapshot of the lab's VM (snapshot save|restore NAME)",
		Long:      "Saves (or restores) a named snapshot of the whole VM with `vagrant snapshot`: a lab can be\nbrought back to a known state without provisioning it again.",
		ValidArgs: []string{"save", "restore"},
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 || (args[0] != "save" && args[0] != "restore") {
				return usageError{fmt.Errorf("usage: labctl snapshot save|restore NAME")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			op, name := args[0], args[1]
			l, err := g.openLab()
			if err != nil {
				return err
			}
			if op == "save" {
				err = l.SnapshotSave(cmd.Context(), cmd.OutOrStdout(), name)
			} else {
				err = l.SnapshotRestore(cmd.Context(), cmd.OutOrStdout(), name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s: snapshot %s %sd\n", l.Spec.Name, name, op)
			return nil
		},
	}
}
