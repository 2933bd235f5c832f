// Package provision turns a booted VM into the lab of its spec: it reads the guest's facts,
// then runs the ordered, idempotent steps (each checks, applies, checks again) over the
// remote package's targets, and collects the evidence of each level. The steps are grouped by
// subject (system, disk, files, containers) and listed in one place, Steps.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// Options change what provisioning may do.
type Options struct {
	// ForceFormat lets the data-disk step format a disk that holds a filesystem or partitions.
	ForceFormat bool
	// Plan only checks and lists what would change.
	Plan bool
	// Out receives one line per step; Log the detailed output.
	Out, Log io.Writer
	// Image returns a container's local image, given the files rendered for its inside (the
	// caller builds it on the host, or takes it from the cache: build.LocalImages). Needed
	// only for containers of image type local.
	Image func(ctx context.Context, inside []render.GuestFile) (build.LocalImage, error)
	// LogDir is where the containers' lxc-start logs are copied to (tmp/<lab>/logs); empty:
	// they stay in the guest only.
	LogDir string
	// Ahead is how many later steps' checks run at once while the steps so far are found done
	// (RunStepsAhead); 0 checks one step at a time. Above 0, the image of a container that does
	// not exist yet is also uploaded while the steps before its creation run (uploadAhead), so
	// Out must take writes from two goroutines. The CLI uses DefaultAhead.
	Ahead int
}

// DefaultAhead is the CLI's Options.Ahead. Measured on a provisioned bookworm lab (TCG, 2
// vCPUs): see the README's fast-loop table.
const DefaultAhead = 4

// Uploader copies a local file to the VM, verified: what the provisioner needs of a
// connection besides running commands (remote.Comm is one).
type Uploader interface {
	UploadFile(ctx context.Context, local, dest string, mode os.FileMode, progress io.Writer) (remote.UploadResult, error)
}

// Provisioner turns a booted VM into the lab of its spec.
type Provisioner struct {
	Spec *spec.Spec
	VM   remote.Target
	// Comm uploads images (a *remote.Comm); nil when nothing is uploaded.
	Comm  Uploader
	Facts Facts
	Opts  Options

	// The data disk as the guest last showed it, and the files rendered for it: read once,
	// by whichever check needs them first (checks run at once, see Options.Ahead), and
	// forgotten when the disk is formatted.
	diskMu  sync.Mutex
	disk    *Disk
	guestMu sync.Mutex
	guest   []render.GuestFile
	// uploads are the images uploaded ahead, by container (uploadAhead); set before the steps
	// run.
	uploads map[string]*upload
}

// New gathers the facts of the VM of the lab of spec s and returns its provisioner.
func New(ctx context.Context, s *spec.Spec, vm remote.Target, comm Uploader, opts Options) (*Provisioner, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	f, err := GatherFacts(ctx, vm, s.User)
	if err != nil {
		return nil, err
	}
	return &Provisioner{Spec: s, VM: vm, Comm: comm, Facts: f, Opts: opts}, nil
}

// lockedWriter takes writes from several goroutines, one whole write at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Run runs every step in order.
func (p *Provisioner) Run(ctx context.Context) (Summary, error) {
	fmt.Fprintf(p.Opts.Out, "facts: %s\n", p.Facts)
	files, err := p.layout()
	if err != nil {
		return Summary{}, err
	}
	steps := p.steps(files)
	if _, ok := p.Opts.Out.(*lockedWriter); !ok {
		p.Opts.Out = &lockedWriter{w: p.Opts.Out} // the steps' lines and an upload ahead's
	}
	stop := p.uploadAhead(ctx, files)
	defer stop()
	return RunStepsAhead(ctx, steps, p.Opts.Out, p.Opts.Plan, p.Opts.Ahead)
}

// Steps are the provisioning steps in the recipe's order, generalised to the spec's
// containers. Every file the renderer returns is written by a step of its own, placed by the
// file's stage: fstab once the disk has a filesystem, the user's configuration once the disk
// is mounted and owned, a container's config once it exists, its inside files once it runs.
func (p *Provisioner) Steps() ([]Step, error) {
	files, err := p.layout()
	if err != nil {
		return nil, err
	}
	return p.steps(files), nil
}

// steps are Steps for the files laid out.
func (p *Provisioner) steps(files []render.GuestFile) []Step {
	stage := func(st render.Stage, container string) []Step {
		var out []Step
		for _, f := range files {
			if f.Stage == st && f.Container == container {
				out = append(out, p.fileStep(f))
			}
		}
		return out
	}
	steps := []Step{p.packagesStep(), p.preflightStep(), p.diskStep()}
	steps = append(steps, stage(render.StageDisk, "")...)
	steps = append(steps, p.mountStep(), p.ownerStep())
	steps = append(steps, stage(render.StageUser, "")...)
	steps = append(steps, p.bridgeStep(), p.lingerStep())
	for _, f := range files {
		if path.Base(f.Path) == render.AutostartUnit {
			steps = append(steps, p.autostartStep())
		}
	}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		if c.Parent != "" {
			steps = append(steps, p.createNestedStep(c))
			steps = append(steps, stage(render.StageContainerConfig, c.Name)...)
			steps = append(steps, p.startStep(c))
			steps = append(steps, stage(render.StageInside, c.Name)...)
			if c.Nesting {
				steps = append(steps, p.lxcInsideStep(c))
			}
			continue
		}
		steps = append(steps, p.createTopStep(c))
		steps = append(steps, stage(render.StageContainerConfig, c.Name)...)
		steps = append(steps, p.startStep(c))
		steps = append(steps, stage(render.StageInside, c.Name)...)
		steps = append(steps, p.addressStep(c))
		if c.Nesting {
			steps = append(steps, p.lxcInsideStep(c))
		}
	}
	return steps
}

// layout renders the guest files for their places and names only: for the guest's LXC version
// when it has one yet (else the spec's), and before the data disk has its UUID. The content a
// file step writes is rendered again when the step runs (render).
func (p *Provisioner) layout() ([]render.GuestFile, error) {
	v := p.Facts.LXCVersion
	if v == "" {
		v = p.Spec.LXC.Version
	}
	files, err := render.Guest(p.Spec, render.GuestInputs{LXCVersion: v})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].Stage < files[j].Stage })
	return files, nil
}

// render renders the guest files for the guest's LXC version and the data disk's UUID.
func (p *Provisioner) render(ctx context.Context) ([]render.GuestFile, error) {
	p.guestMu.Lock()
	defer p.guestMu.Unlock()
	if p.guest != nil {
		return p.guest, nil
	}
	v := p.Facts.LXCVersion
	if v == "" {
		return nil, errors.New("LXC is not installed in the guest yet")
	}
	uuid := ""
	if p.Spec.Btrfs.FstabBy == "uuid" {
		d, err := p.dataDisk(ctx)
		if err != nil {
			return nil, err
		}
		if d.FSType != "btrfs" {
			return nil, fmt.Errorf("data disk %s is not formatted yet", d.Path)
		}
		uuid = d.UUID
	}
	g, err := render.Guest(p.Spec, render.GuestInputs{LXCVersion: v, DiskUUID: uuid})
	if err != nil {
		return nil, err
	}
	p.guest = g
	return g, nil
}

// Targets returns the lab's containers as targets, by name, given the facts.
func Targets(s *spec.Spec, vm remote.Target, f Facts) map[string]*remote.Container {
	out := map[string]*remote.Container{}
	for _, c := range s.Containers {
		if c.Parent != "" {
			out[c.Name] = remote.NewContainer(c.Name, remote.LevelNested, out[c.Parent])
			continue
		}
		t := remote.NewContainer(c.Name, remote.LevelUnpriv, vm)
		t.AsUser = c.Unprivileged
		if c.Unprivileged && f.Delegated() {
			// From inside a delegated scope of the user's systemd (what Debian's
			// lxc-unpriv-attach does, quietly): a plain lxc-attach from an SSH session fails
			// "Failed to move process into target cgroup".
			t.Attach = delegatedScope("lxc-attach")
			t.Env = userBusEnv(f.UID)
		}
		out[c.Name] = t
	}
	return out
}

// delegatedScope runs an LXC command in a new systemd --user scope with cgroup delegation.
func delegatedScope(cmd string) []string {
	return []string{"systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", cmd}
}

// userBusEnv lets systemd-run --user reach the user's manager from an SSH session that may
// have no logind session of its own.
func userBusEnv(uid int) []string {
	dir := fmt.Sprintf("/run/user/%d", uid)
	return []string{"XDG_RUNTIME_DIR=" + dir, "DBUS_SESSION_BUS_ADDRESS=unix:path=" + dir + "/bus"}
}

// parentOf is where a container's LXC commands run: the VM, or its parent container.
func (p *Provisioner) parentOf(c *spec.Container) remote.Target {
	if c.Parent == "" {
		return p.VM
	}
	return p.target(c.Parent)
}

func (p *Provisioner) target(name string) remote.Target {
	return Targets(p.Spec, p.VM, p.Facts)[name]
}

// targetOf is the target that holds a rendered file: the VM, or the container it is in.
func (p *Provisioner) targetOf(f render.GuestFile) remote.Target {
	if f.Target == "" {
		return p.VM
	}
	return p.target(f.Target)
}

// Init is the init of a container of the VM, as the VM sees it.
type Init struct {
	PID int
	// UIDMap is its /proc/PID/uid_map: "inside outside count" per line.
	UIDMap string
}

// InitOf reads a container of the VM's init: its PID and uid_map, in one command.
func (p *Provisioner) InitOf(ctx context.Context, name string) (Init, error) {
	out, err := remote.Sh(ctx, p.VM, false, remote.Shf("pid=$(lxc-info -n %s -p -H) && echo $pid && cat /proc/$pid/uid_map", name))
	if err != nil {
		return Init{}, err
	}
	pid, m, _ := strings.Cut(out, "\n")
	n, err := strconv.Atoi(strings.TrimSpace(pid))
	if err != nil {
		return Init{}, fmt.Errorf("the init of %s: lxc-info printed %q, not a PID", name, pid)
	}
	return Init{PID: n, UIDMap: m}, nil
}

// ManagedFile is a file the provisioner manages, on the target that holds it.
type ManagedFile struct {
	Target remote.Target
	Path   string
}

// ManagedFiles lists every file the provisioner writes or appends to.
func (p *Provisioner) ManagedFiles(ctx context.Context) ([]ManagedFile, error) {
	g, err := p.render(ctx)
	if err != nil {
		return nil, err
	}
	var out []ManagedFile
	for _, f := range g {
		out = append(out, ManagedFile{Target: p.targetOf(f), Path: f.Path})
	}
	return out, nil
}
