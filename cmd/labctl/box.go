package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/labctl/labctl/lab"
)

func init() {
	register("box", "build a Debian libvirt box offline and add it to Vagrant (box build --release R)", runBox)
}

func runBox(ctx context.Context, args []string) error {
	fs := newFlags("box", "build --release bullseye|bookworm|trixie [--user vagrant]",
		"Builds a libvirt Vagrant box offline with mmdebstrap from the host's apt sources, with LXC and\n"+
			"what the lab needs baked in, a key of its own and direct kernel boot; caches it under\n"+
			lab.CacheDir()+"/boxes keyed by its recipe, and adds it to Vagrant.")
	release := fs.String("release", lab.DefaultPreset, "Debian release: bullseye, bookworm or trixie")
	user := fs.String("user", "vagrant", "the lab user baked into the box")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fs.Usage()
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "build" {
		fs.Usage()
		return fmt.Errorf("usage: labctl box build --release R")
	}
	if err := parseNoArgs(fs, args[1:]); err != nil {
		return err
	}
	s, err := lab.Preset(lab.DefaultPreset)
	if err != nil {
		return err
	}
	s.Name, s.Box.Release, s.User = "box-"+*release, *release, *user
	if err := s.Validate(); err != nil {
		return err
	}
	l, err := lab.Open(".", s)
	if err != nil {
		return err
	}
	v, closeV, err := lab.NewVagrant(l, os.Stdout)
	if err != nil {
		return err
	}
	defer closeV()
	key, err := lab.EnsureBox(ctx, s, v, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("box %s ready (recipe %s)\n", s.BoxName(), key)
	return nil
}
