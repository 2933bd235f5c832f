package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/lxc"
	"github.com/labctl/labctl/lab/release"
)

// version and commit are labctl's version and the commit it was built from: set at build time
// (make build, make deb: -X main.version=... -X main.commit=...), else what Go recorded (the
// module's version `go install ...@VERSION` built; the VCS revision of a build in a checkout).
var version, commit = "", ""

func versionCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print labctl's version, commit and Go version, and the releases and LXC versions it knows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			printVersion(cmd.OutOrStdout())
			return nil
		},
	}
}

// buildVersion is labctl's version and the commit it was built from, as far as it knows.
func buildVersion() (v, rev string) {
	v, rev = version, commit
	if rev == "" {
		rev = "unknown"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return orDevel(v), rev
	}
	if v == "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	var vcs, when, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			vcs = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if vcs != "" && commit == "" {
		rev = fmt.Sprintf("%.12s (%s%s)", vcs, when, dirty)
	}
	return orDevel(v), rev
}

func orDevel(v string) string {
	if v == "" {
		return "devel"
	}
	return v
}

func printVersion(out io.Writer) {
	v, rev := buildVersion()
	fmt.Fprintf(out, "labctl %s\ncommit %s\n%s %s/%s\n", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var rels []string
	for _, r := range release.All() {
		built := ""
		if r.Buildable {
			built = ", boxes built here"
		}
		rels = append(rels, fmt.Sprintf("  %-9s %s: kernel %s, LXC %s%s", r.Name, r.Distro, r.Kernel, r.LXC, built))
	}
	fmt.Fprintf(out, "releases:\n%s\n", strings.Join(rels, "\n"))
	fmt.Fprintln(out, "LXC versions (the dialect labctl writes from each):")
	for _, d := range lxc.Dialects() {
		fmt.Fprintf(out, "  >= %-4s %s\n", d[0], d[1])
	}
}
