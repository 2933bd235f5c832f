package main

import (
	"context"
	"fmt"
	"os"

	"github.com/labctl/labctl/lab"
)

func init() {
	register("doctor", "check every host prerequisite and say what to do for each missing one", runDoctor)
}

func runDoctor(ctx context.Context, args []string) error {
	fs := newFlags("doctor", "[--fix]", "Checks the host: tools, libvirt, accelerator, apt sources, cache. --fix starts libvirt and creates the pool.")
	fix := fs.Bool("fix", false, "start libvirt daemons and create labctl's storage pool when missing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fix {
		if err := lab.EnsureLibvirt(ctx, os.Stdout); err != nil {
			fmt.Println("fix:", err)
		}
	}
	failed := 0
	for _, c := range lab.Doctor(ctx) {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Printf("%s %-28s %s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Hint != "" {
			fmt.Printf("     -> %s\n", c.Hint)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed: see the hints above (`make deps` installs the host packages)", failed)
	}
	return nil
}
