package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/release"
	"github.com/labctl/labctl/lab/spec"
)

func boxCmd(g *globals) *cobra.Command {
	box := &cobra.Command{
		Use:   "box",
		Short: "build a Debian libvirt box offline and add it to Vagrant (box build --release R)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{fmt.Errorf("usage: labctl box build --release R")}
		},
	}
	var rel, user, kernel, lxcSuite string
	build := &cobra.Command{
		Use:   "build",
		Short: "build a box (cached by its recipe) and add it to Vagrant",
		Long: "Builds a libvirt Vagrant box offline with mmdebstrap from the host's apt sources, with LXC and\n" +
			"what the lab needs baked in, a key of its own and direct kernel boot; caches it under\n" +
			host.CacheDir() + "/boxes keyed by its recipe, and adds it to Vagrant.\n" +
			"Releases: " + strings.Join(release.Buildable(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := spec.Preset(spec.DefaultPreset)
			if err != nil {
				return err
			}
			s.Box.Release, s.Box.Kernel, s.User = rel, kernel, user
			if lxcSuite != "" {
				su, err := release.SuiteOf(lxcSuite)
				if err != nil {
					return fmt.Errorf("--lxc %s %w", lxcSuite, err)
				}
				s.LXC.Suite, s.LXC.Version, s.LXC.Expect = lxcSuite, su.LXC, ""
			}
			s.Name = "box-build" // a lab directory of its own, for Vagrant's log
			if err := s.Validate(); err != nil {
				return err
			}
			l, err := lab.OpenSpec(g.source(), s)
			if err != nil {
				return err
			}
			v, closeV, err := l.Vagrant(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer closeV()
			key, err := l.EnsureBox(cmd.Context(), v, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "box %s ready (recipe %s)\n", s.BoxName(), key)
			return nil
		},
	}
	build.Flags().StringVar(&rel, "release", spec.DefaultPreset, "Debian release: "+strings.Join(release.Buildable(), ", "))
	build.Flags().StringVar(&kernel, "kernel", "", "apt suite of the box's kernel: empty for the release's own, or any suite of the host's mirror (bookworm-backports, bullseye, ...)")
	build.Flags().StringVar(&lxcSuite, "lxc", "", "apt suite of the box's LXC: empty for the release's own, or another suite's (bullseye 4.0.6, ..., forky 7.0.0)")
	build.Flags().StringVar(&user, "user", "vagrant", "the lab user baked into the box")
	box.AddCommand(build)
	return box
}
