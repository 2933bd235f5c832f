package main

import (
	"context"
	"fmt"
	"os"

	"github.com/labctl/labctl/lab"
)

func init() {
	register("halt", "stop the lab's VM (keeps it)", runHalt)
	register("destroy", "remove the VM, its disks and volumes, the pinned host key and the state", runDestroy)
}

func runHalt(ctx context.Context, args []string) error {
	fs := newFlags("halt", "[-f lab.yaml | --preset NAME]", "Stops the VM with `vagrant halt`.")
	var sf specFlags
	sf.add(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, nil, os.Stdout, false)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.vagrant.Halt(ctx)
}

func runDestroy(ctx context.Context, args []string) error {
	fs := newFlags("destroy", "[-f lab.yaml | --preset NAME]",
		"Destroys the VM (vagrant destroy -f), deletes the lab's volumes from labctl's libvirt pool,\n"+
			"the pinned known_hosts and the state. Boxes and images stay cached.")
	var sf specFlags
	sf.add(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, nil, os.Stdout, false)
	if err != nil {
		return err
	}
	defer s.Close()
	gone, err := lab.Destroy(ctx, s.lab, s.vagrant)
	if err != nil {
		return err
	}
	if len(gone) == 0 {
		fmt.Printf("lab %s: nothing to destroy\n", s.lab.Spec.Name)
		return nil
	}
	fmt.Printf("lab %s destroyed: %v\n", s.lab.Spec.Name, gone)
	return nil
}
