// Command labctl recreates, on demand, a lab of nested unprivileged LXC containers in a
// Vagrant VM with a btrfs data disk, and proves it works. It is a thin CLI: one file per
// verb, the lab and provision packages do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"strings"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

// globals are the flags every verb takes.
type globals struct {
	file, preset string
	// libvirt overrides the spec's libvirt setting (--libvirt).
	libvirt string
	// stateDir holds the labs' directories instead of ./tmp (--state-dir).
	stateDir string
	insecure bool
}

// exitError carries an exit code for a failure that has already been reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// usageError is a command line labctl cannot read: exit 2, as for an unknown verb.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "labctl",
		Short: "nested, unprivileged LXC labs in a Vagrant VM, on demand",
		Long: "labctl: nested, unprivileged LXC labs in a Vagrant VM, on demand.\n\n" +
			"The lab is -f lab.yaml, or --preset NAME, or ./lab.yaml, or the preset " + spec.DefaultPreset + ".",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Help()
			return usageError{errors.New("no verb given")}
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w: see `%s --help`", err, cmd.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&g.file, "file", "f", "", "lab spec file (lab.yaml); - reads standard input")
	pf.StringVar(&g.preset, "preset", "", "use an embedded preset instead of a file (see `labctl presets`)")
	pf.StringVar(&g.libvirt, "libvirt", "", "libvirt daemon of the VM, overriding lab.yaml's libvirt: session (your own), system (root or group libvirt) or auto")
	pf.StringVar(&g.stateDir, "state-dir", "", "directory that holds the labs' state (tmp/<lab>/ by default: ./tmp)")
	pf.BoolVar(&g.insecure, "insecure-ignore-host-key", false, "do not pin or check the VM's SSH host key (throwaway VMs only)")
	for _, mk := range []func(*globals) *cobra.Command{
		agentCmd, boxCmd, cacheCmd, destroyCmd, doctorCmd, execCmd, haltCmd, initCmd, logsCmd, manCmd, matrixCmd, presetsCmd, provisionCmd, resetCmd,
		renderCmd, snapshotCmd, sshCmd, statusCmd, testCmd, upCmd, validateCmd, versionCmd,
	} {
		root.AddCommand(mk(g))
	}
	return root
}

func main() {
	// The first SIGINT or SIGTERM cancels the run: every child's process group gets SIGTERM,
	// then SIGKILL after host.Grace, and labctl cleans up; a second one exits at once (130).
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := host.Interrupts(cancel, os.Stderr)
	root := newRoot()
	cmd, err := root.ExecuteContextC(ctx)
	stop()
	if err == nil {
		return
	}
	var in host.Interrupted
	if errors.As(context.Cause(ctx), &in) {
		fmt.Fprintf(os.Stderr, "%s: %s (%s)\n", cmd.CommandPath(), err, in)
		os.Exit(in.ExitCode())
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		msg := err.Error()
		if strings.HasPrefix(msg, "unknown command ") {
			verb, _, _ := strings.Cut(strings.TrimPrefix(msg, "unknown command "), " for ")
			msg = "unknown verb " + verb + ": see `labctl --help`"
		}
		fmt.Fprintf(os.Stderr, "labctl: %s\n", msg)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", cmd.CommandPath(), err)
	os.Exit(1)
}

// isCobraUsage recognises the errors cobra returns for a command line it cannot read.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag", "unknown shorthand flag", "accepts ", "requires ", "invalid argument "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
