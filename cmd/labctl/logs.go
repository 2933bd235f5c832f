package main

import (
	"context"
	"fmt"
	"os"
	"path"

	"github.com/labctl/labctl/provision"
)

func init() {
	register("logs", "collect evidence per level (vagrant, lxc-start debug logs, lxc-info, dmesg) into tmp/<lab>/logs/", runLogs)
}

func runLogs(ctx context.Context, args []string) error {
	fs := newFlags("logs", "[-f lab.yaml | --preset NAME]",
		"Collects, per level, what explains a failure: the VM's dmesg and lxc-net journal; each\n"+
			"container's lxc-start debug log, lxc-info and dmesg tail. Written to tmp/<lab>/logs/.")
	var sf specFlags
	var cf connFlags
	sf.add(fs)
	cf.add(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s, err := openSession(ctx, &sf, &cf, nil, true)
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := provision.GatherFacts(ctx, s.vm, s.lab.Spec.User)
	if err != nil {
		return err
	}
	wrote, err := provision.CollectLogs(ctx, s.lab, s.vm, f)
	for _, w := range wrote {
		fmt.Println(path.Join(s.lab.LogDir(), w))
	}
	fmt.Println(path.Join(s.lab.LogDir(), "vagrant.log"))
	if _, err := os.Stat(s.lab.Path("logs", "provision.log")); err == nil {
		fmt.Println(path.Join(s.lab.LogDir(), "provision.log"))
	}
	return err
}
