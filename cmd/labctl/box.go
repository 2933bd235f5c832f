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
	o := &boxBuild{}
	build := &cobra.Command{
		Use:   "build",
		Short: "build a box (cached by its recipe) and add it to Vagrant",
		Long: "Builds a libvirt Vagrant box offline with mmdebstrap from the host's apt sources, with LXC and\n" +
			"what the lab needs baked in, a key of its own and direct kernel boot; caches it under\n" +
			host.CacheDir() + "/boxes keyed by its recipe, and adds it to Vagrant.\n" +
			"Releases: " + strings.Join(release.Buildable(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.build(cmd, g)
		},
	}
	build.Flags().StringVar(&o.rel, "release", spec.DefaultPreset, "Debian release: "+strings.Join(release.Buildable(), ", "))
	build.Flags().StringVar(&o.kernel, "kernel", "", "apt suite of the box's kernel: empty for the release's own, or any suite of the host's mirror (bookworm-backports, bullseye, ...)")
	build.Flags().StringVar(&o.lxcSuite, "lxc", "", "apt suite of the box's LXC: empty for the release's own, or another suite's (bullseye 4.0.6, ..., forky 7.0.0)")
	build.Flags().StringVar(&o.src.Source, "lxc-source", "", "build the box's LXC from source: a release tarball or a git checkout (lxc.source)")
	build.Flags().StringVar(&o.src.Ref, "lxc-ref", "", "the commit or tag of the --lxc-source checkout (default HEAD)")
	build.Flags().StringVar(&o.src.Version, "lxc-version", "", "the LXC version --lxc-source is (its dialect)")
	build.Flags().StringVar(&o.cgroup, "cgroup", "", "v1 for a box that boots on cgroup v1 (box.cgroup; default v2)")
	build.Flags().StringVar(&o.user, "user", "vagrant", "the lab user baked into the box")
	box.AddCommand(build)
	return box
}

// boxBuild is `labctl box build`'s flags.
type boxBuild struct {
	rel, user, kernel, lxcSuite, cgroup string
	src                                 spec.LXC
}

// build builds the box the flags describe and adds it to Vagrant.
func (o *boxBuild) build(cmd *cobra.Command, g *globals) error {
	s, err := spec.Preset(spec.DefaultPreset)
	if err != nil {
		return err
	}
	s.Box.Release, s.Box.Kernel, s.Box.Cgroup, s.User = o.rel, o.kernel, o.cgroup, o.user
	if r, ok := release.Get(o.rel); ok {
		s.LXC.Version, s.LXC.Expect = r.LXC, "" // the release's own
	}
	if o.src.Source != "" || o.src.Ref != "" || o.src.Version != "" {
		if o.src.Version == "" {
			return usageError{fmt.Errorf("--lxc-source: say which LXC version the source is with --lxc-version (e.g. 6.0.4)")}
		}
		s.LXC.Source, s.LXC.Ref, s.LXC.Version = o.src.Source, o.src.Ref, o.src.Version
	}
	if o.lxcSuite != "" {
		su, err := release.SuiteOf(o.lxcSuite)
		if err != nil {
			return fmt.Errorf("--lxc %s %w", o.lxcSuite, err)
		}
		s.LXC.Suite, s.LXC.Version, s.LXC.Expect = o.lxcSuite, su.LXC, ""
	}
	s.Name = "box-build" // a lab directory of its own, for Vagrant's log
	if err := s.ValidateBox(); err != nil {
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
}
