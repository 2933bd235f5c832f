package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
)

// Provider is what differs between the Vagrant providers labctl drives: what the host needs,
// what the Vagrantfile gets from the host, and what a VM leaves beyond `vagrant destroy`.
// Adding a provider is one implementation here (and its branch in Vagrantfile.tmpl).
type Provider interface {
	// Name is Vagrant's name of the provider.
	Name() string
	// Prepare makes the host ready to run the lab's VM, saying on out what it did.
	Prepare(ctx context.Context, out io.Writer) error
	// Inputs resolves the Vagrantfile's host values for lab l, keeping them in its state; the
	// notice (may be empty) is one line for the user.
	Inputs(l *Lab) (vin render.VagrantInputs, notice string, err error)
	// CheckLeftover fails, naming it, when a VM of this lab exists that Vagrant does not track.
	CheckLeftover(ctx context.Context, l *Lab, out io.Writer) error
	// RemoveLeftovers removes what a VM of this lab left beyond `vagrant destroy`, and says what.
	RemoveLeftovers(ctx context.Context, l *Lab) ([]string, error)
	// ValidateEnv prepares the host (or a stand-in under dir) for `vagrant validate` and
	// returns the environment it needs.
	ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, error)
}

// ProviderOf returns the provider a spec boots with.
func ProviderOf(s *spec.Spec) (Provider, error) {
	switch name := s.ProviderFor(); name {
	case "libvirt":
		return libvirt{}, nil
	case "virtualbox":
		return virtualbox{}, nil
	default:
		return nil, fmt.Errorf("provider %q is not supported: use virtualbox or libvirt", name)
	}
}

// libvirt runs the VM under qemu through vagrant-libvirt, reached only through a 127.0.0.1
// port forward; its disks live in labctl's storage pool.
type libvirt struct{}

func (libvirt) Name() string { return "libvirt" }

func (libvirt) Prepare(ctx context.Context, out io.Writer) error {
	return host.EnsureLibvirt(ctx, out)
}

func (libvirt) Inputs(l *Lab) (render.VagrantInputs, string, error) {
	vin := render.VagrantInputs{Pool: host.Pool}
	st, err := l.LoadState()
	if err != nil {
		return vin, "", err
	}
	accel, notice, err := host.Accel(l.Spec.Accelerator)
	if err != nil {
		return vin, "", err
	}
	if st.SSHPort == 0 {
		if st.SSHPort, err = host.FreePort(); err != nil {
			return vin, "", err
		}
	}
	st.Accel = accel
	if err := l.SaveState(st); err != nil {
		return vin, "", err
	}
	vin.SSHPort, vin.Accel = st.SSHPort, accel
	if l.Spec.Box.Release != "" {
		vin.SSHKey = host.VagrantBoxKey(l.Spec.BoxName())
	}
	return vin, notice, nil
}

func (libvirt) CheckLeftover(ctx context.Context, l *Lab, out io.Writer) error {
	dom := l.Spec.DomainName()
	exists, err := host.DomainExists(ctx, dom)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("libvirt domain %s is left from an earlier run that Vagrant no longer tracks (or another checkout runs a lab of the same name): run `labctl destroy` (it removes it), then `labctl up` again", dom)
	}
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	if st.SSHPort != 0 && !host.PortFree(st.SSHPort) {
		fmt.Fprintf(out, "host: port %d is taken, picking another\n", st.SSHPort)
		st.SSHPort = 0
		return l.SaveState(st)
	}
	return nil
}

func (libvirt) RemoveLeftovers(ctx context.Context, l *Lab) ([]string, error) {
	var gone []string
	if err := host.StartLibvirt(ctx, io.Discard); err != nil {
		return gone, fmt.Errorf("cannot look for what the lab left in libvirt: %w", err)
	}
	// A domain Vagrant no longer knows (an interrupted run, a deleted tmp/): its name is in
	// labctl's namespace for this lab, so it is this lab's.
	dom := l.Spec.DomainName()
	exists, err := host.DomainExists(ctx, dom)
	if err != nil {
		return gone, err
	}
	if exists {
		_, _ = host.Virsh(ctx, "destroy", dom) // fails when it is not running: undefine decides
		if _, err := host.Virsh(ctx, "undefine", dom); err != nil {
			return gone, err
		}
		gone = append(gone, "domain "+dom)
	}
	vols, err := host.DeleteVolumes(ctx, l.Spec.DomainPrefix())
	return append(gone, vols...), err
}

func (libvirt) ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, error) {
	// vagrant-libvirt validates against a live libvirtd, as `up` needs it too.
	return nil, host.EnsureLibvirt(ctx, out)
}

// virtualbox is the recipe's provider. Nothing boots it on a host without VirtualBox, but its
// Vagrantfile renders and validates everywhere.
type virtualbox struct{}

func (virtualbox) Name() string { return "virtualbox" }

func (virtualbox) Prepare(ctx context.Context, out io.Writer) error {
	if _, err := exec.LookPath("VBoxManage"); err != nil {
		return fmt.Errorf("provider virtualbox: VirtualBox is not installed on this host: use a libvirt preset (e.g. --preset %s), or install VirtualBox", spec.DefaultPreset)
	}
	return nil
}

func (virtualbox) Inputs(*Lab) (render.VagrantInputs, string, error) {
	return render.VagrantInputs{Pool: host.Pool}, "", nil
}

func (virtualbox) CheckLeftover(context.Context, *Lab, io.Writer) error { return nil }

func (virtualbox) RemoveLeftovers(context.Context, *Lab) ([]string, error) { return nil, nil }

// vboxStub stands in for VBoxManage: it only answers --version, so that `vagrant validate`
// checks VirtualBox settings ("The following settings shouldn't exist") on a host without it.
const vboxStub = "#!/bin/sh\n# labctl's stand-in for VBoxManage: only answers --version, so that\n# `vagrant validate` checks VirtualBox settings on a host without VirtualBox.\ncase \"$1\" in --version|-v) echo 7.0.14r161095; exit 0;; esac\necho \"VBoxManage stub: $*: not available\" >&2\nexit 1\n"

func (virtualbox) ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, error) {
	if _, err := exec.LookPath("VBoxManage"); err == nil {
		return nil, nil
	} else if !errors.Is(err, exec.ErrNotFound) {
		return nil, err
	}
	stubDir := filepath.Join(dir, "stub-bin")
	if err := os.MkdirAll(stubDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(stubDir, "VBoxManage"), []byte(vboxStub), 0o755); err != nil {
		return nil, err
	}
	return []string{"PATH=" + stubDir + string(os.PathListSeparator) + os.Getenv("PATH")}, nil
}
