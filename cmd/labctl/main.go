// Command labctl recreates, on demand, a lab of nested unprivileged LXC containers in a
// Vagrant VM with a btrfs data disk, and proves it works. Each verb lives in its own file;
// the work is done by the lab and provision packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/labctl/labctl/lab"
)

type verb struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var verbs = map[string]verb{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	verbs[name] = verb{summary: summary, run: run}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "labctl: nested, unprivileged LXC labs in a Vagrant VM, on demand.")
	fmt.Fprintln(w, "\nUsage: labctl VERB [flags]   (labctl VERB --help for a verb's flags)\n\nVerbs:")
	var names []string
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nThe lab is -f lab.yaml, or --preset NAME, or ./lab.yaml, or the preset "+lab.DefaultPreset+".")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	v, ok := verbs[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "labctl: unknown verb %q: see `labctl --help`\n", os.Args[1])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := v.run(ctx, os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintf(os.Stderr, "labctl %s: %s\n", os.Args[1], err)
		os.Exit(1)
	}
}

// exitError carries an exit code for a failure that has already been reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// newFlags makes a verb's flag set; --help prints the usage and returns flag.ErrHelp.
func newFlags(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("labctl "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: labctl %s %s\n\n%s\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}

// specFlags are -f and --preset, shared by every verb that works on a lab.
type specFlags struct {
	file, preset string
}

func (sf *specFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&sf.file, "f", "", "lab spec file (lab.yaml); - reads standard input")
	fs.StringVar(&sf.preset, "preset", "", "use an embedded preset instead of a file (see `labctl presets`)")
}

// load returns the spec: -f, else --preset, else ./lab.yaml, else the default preset.
func (sf *specFlags) load() (*lab.Spec, error) {
	switch {
	case sf.file != "" && sf.preset != "":
		return nil, errors.New("give -f or --preset, not both")
	case sf.file != "":
		return lab.Load(sf.file)
	case sf.preset != "":
		return lab.Preset(sf.preset)
	}
	if _, err := os.Stat("lab.yaml"); err == nil {
		return lab.Load("lab.yaml")
	}
	return lab.Preset(lab.DefaultPreset)
}

// openLab loads the spec and its state directory under the current directory.
func (sf *specFlags) openLab() (*lab.Lab, error) {
	s, err := sf.load()
	if err != nil {
		return nil, err
	}
	return lab.Open(".", s)
}

// parseNoArgs parses the flags of a verb that takes no positional argument.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: see `%s --help`", fs.Arg(0), fs.Name())
	}
	return nil
}
