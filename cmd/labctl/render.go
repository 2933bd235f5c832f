package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labctl/labctl/lab"
)

func init() {
	register("render", "write the Vagrantfile and every guest file of a lab to a directory", runRender)
}

func runRender(ctx context.Context, args []string) error {
	fs := newFlags("render", "[-f lab.yaml | --preset NAME] [-o DIR]",
		"Renders DIR/Vagrantfile, every whole guest file at DIR/guest/<guest path> and every set of\n"+
			"lines ensured in a shared file at DIR/guest/<guest path>.lines. Default DIR: tmp/<lab>.")
	var sf specFlags
	sf.add(fs)
	out := fs.String("o", "", "output directory (default tmp/<lab name>)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	l, err := sf.openLab()
	if err != nil {
		return err
	}
	vin, notice, err := l.VagrantInputs()
	if err != nil {
		return err
	}
	if notice != "" {
		fmt.Fprintln(os.Stderr, notice)
	}
	r, err := lab.Render(l.Spec, vin, lab.GuestInputs{LXCVersion: l.Spec.LXC.Version})
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = l.Dir
	}
	wrote, err := r.WriteTo(dir)
	if err != nil {
		return err
	}
	for _, w := range wrote {
		fmt.Println(filepath.Join(dir, w))
	}
	return nil
}
