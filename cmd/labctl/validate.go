package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/labctl/labctl/lab"
)

func init() {
	register("validate", "check a lab spec, and its Vagrantfile with `vagrant validate`", runValidate)
}

func runValidate(ctx context.Context, args []string) error {
	fs := newFlags("validate", "[-f lab.yaml | --preset NAME]",
		"Checks the spec field by field. Where vagrant is installed it also renders the Vagrantfile\n"+
			"into a temporary directory and runs `vagrant validate` on it; for VirtualBox on a host\n"+
			"without it, through a stub VBoxManage, so that provider-setting typos are still caught.")
	var sf specFlags
	sf.add(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := sf.load()
	if err != nil {
		return err
	}
	fmt.Printf("spec %s: valid (box %s, provider %s)\n", s.Name, s.BoxName(), s.ProviderFor())
	if _, err := exec.LookPath("vagrant"); err != nil {
		fmt.Println("vagrant validate: skipped, vagrant is not installed (`make deps` installs it)")
		return nil
	}
	if s.ProviderFor() == "libvirt" {
		// vagrant-libvirt validates against a live libvirtd (as `up` needs it too).
		if err := lab.EnsureLibvirt(ctx, os.Stdout); err != nil {
			return err
		}
	}
	out, err := lab.VagrantValidate(ctx, s)
	if err != nil {
		return err
	}
	fmt.Printf("vagrant validate (%s): %s\n", s.ProviderFor(), out)
	return nil
}
