package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func init() {
	register("snapshot", "save or restore a named snapshot of the lab's VM (snapshot save|restore NAME)", runSnapshot)
}

func runSnapshot(ctx context.Context, args []string) error {
	fs := newFlags("snapshot", "save|restore NAME [-f lab.yaml | --preset NAME]",
		"Saves (or restores) a named snapshot of the whole VM with `vagrant snapshot`: a lab can be\n"+
			"brought back to a known state without provisioning it again.")
	var sf specFlags
	sf.add(fs)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fs.Usage()
		return flag.ErrHelp
	}
	if len(args) < 2 || (args[0] != "save" && args[0] != "restore") {
		fs.Usage()
		return fmt.Errorf("usage: labctl snapshot save|restore NAME")
	}
	op, name := args[0], args[1]
	if err := parseNoArgs(fs, args[2:]); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, nil, os.Stdout, false)
	if err != nil {
		return err
	}
	defer s.Close()
	if op == "save" {
		err = s.vagrant.SnapshotSave(ctx, name)
	} else {
		err = s.vagrant.SnapshotRestore(ctx, name)
	}
	if err != nil {
		return err
	}
	fmt.Printf("lab %s: snapshot %s %sd\n", s.lab.Spec.Name, name, op)
	return nil
}
