package main

import (
	"context"
	"os"

	"github.com/labctl/labctl/provision"
)

func init() {
	register("provision", "run the provisioning steps on the lab's VM (idempotent); --plan only lists", runProvision)
}

func runProvision(ctx context.Context, args []string) error {
	fs := newFlags("provision", "[-f lab.yaml | --preset NAME] [--plan] [--force-format]",
		"Runs the ordered, idempotent steps that turn the booted VM into the lab. One line per step\n"+
			"(ok / changed / failed, with its time); ends with `N changed, M ok`. --plan changes nothing.")
	var sf specFlags
	var cf connFlags
	sf.add(fs)
	cf.add(fs)
	plan := fs.Bool("plan", false, "only check, and list what would change")
	force := fs.Bool("force-format", false, "let the data-disk step format a disk that is not blank (destroys its data)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, &cf, os.Stdout, true)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := s.provisioner(ctx, provision.Options{ForceFormat: *force, Plan: *plan, Out: os.Stdout})
	if err != nil {
		return err
	}
	_, err = p.Run(ctx)
	return err
}
