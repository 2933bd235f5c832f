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
	"github.com/labctl/labctl/lab/provider"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// virtualbox is the recipe's provider. Nothing boots it on a host without VirtualBox, but its
// Vagrantfile renders and validates everywhere. Vagrant alone tracks a VirtualBox VM: nothing
// of the lab exists outside its record, and every act on the VM goes through Vagrant.
type virtualbox struct{}

func (virtualbox) Info() provider.Info { p, _ := provider.Get("virtualbox"); return p }

func (virtualbox) Where() string { return "" }

func (virtualbox) Daemon() string { return "" }

func (virtualbox) Fits(*Lab) error { return nil }

func (virtualbox) Prepare(ctx context.Context, out io.Writer) error {
	if _, err := exec.LookPath("VBoxManage"); err != nil {
		return fmt.Errorf("provider virtualbox: VirtualBox is not installed on this host: use a libvirt preset (e.g. --preset %s), or install VirtualBox", spec.DefaultPreset)
	}
	return nil
}

func (virtualbox) Inputs(*Lab) (render.VagrantInputs, string, error) {
	return render.VagrantInputs{Pool: host.Pool}, "", nil
}

func (virtualbox) Inventory(context.Context, *Lab) (Inventory, error) { return Inventory{}, nil }

func (virtualbox) BeforeCreate(context.Context, *Lab, io.Writer) error { return nil }

func (virtualbox) CheckBox(context.Context, string, string, io.Writer) error { return nil }

func (virtualbox) BoxAdded(context.Context, string, io.Writer) {}

func (virtualbox) Remove(context.Context, Inventory) ([]string, error) { return nil, nil }

func (virtualbox) State(context.Context, string) (string, bool, error) { return "", false, nil }

func (virtualbox) PowerOff(ctx context.Context, _ string, v *vagrant.Driver) error {
	_, err := v.Run(ctx, "halt", "--force")
	return err
}

func (virtualbox) Snapshots() Snapshots { return nil }

func (virtualbox) Layers() Layers { return nil }

// vboxStub stands in for VBoxManage: it only answers --version, so that `vagrant validate`
// checks VirtualBox settings ("The following settings shouldn't exist") on a host without it.
const vboxStub = "#!/bin/sh\n# labctl's stand-in for VBoxManage: only answers --version, so that\n# `vagrant validate` checks VirtualBox settings on a host without VirtualBox.\ncase \"$1\" in --version|-v) echo 7.0.14r161095; exit 0;; esac\necho \"VBoxManage stub: $*: not available\" >&2\nexit 1\n"

func (virtualbox) ValidateEnv(ctx context.Context, dir string, out io.Writer) ([]string, render.VagrantInputs, error) {
	vin := render.VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: host.Pool}
	if _, err := exec.LookPath("VBoxManage"); err == nil {
		return nil, vin, nil
	} else if !errors.Is(err, exec.ErrNotFound) {
		return nil, vin, err
	}
	stubDir := filepath.Join(dir, "stub-bin")
	if err := os.MkdirAll(stubDir, 0o755); err != nil {
		return nil, vin, err
	}
	if err := os.WriteFile(filepath.Join(stubDir, "VBoxManage"), []byte(vboxStub), 0o755); err != nil {
		return nil, vin, err
	}
	return []string{"PATH=" + stubDir + string(os.PathListSeparator) + os.Getenv("PATH")}, vin, nil
}
