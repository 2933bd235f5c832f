package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// VagrantValidate renders the spec's Vagrantfile into a temporary directory and runs
// `vagrant validate` on it, in the environment the provider sets up for it (libvirt: a live
// libvirtd, started when nothing runs it; VirtualBox on a host without it: a stub
// VBoxManage, so that Vagrant still checks the provider's settings). It returns Vagrant's
// verdict; what it started is reported on out.
func VagrantValidate(ctx context.Context, s *spec.Spec, out io.Writer) (string, error) {
	p, err := ProviderOf(s)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "labctl-validate-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// Fixed host values: validation does not depend on them. The libvirt daemon it does:
	// vagrant-libvirt validates against the one the Vagrantfile names.
	vin := render.VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: host.Pool}
	if lv, ok := p.(libvirt); ok {
		vin.Session = lv.virt.Session
	}
	vf, err := render.Vagrantfile(s, vin)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), vf, 0o644); err != nil {
		return "", err
	}
	env, err := p.ValidateEnv(ctx, dir, out)
	if err != nil {
		return "", err
	}
	v := &vagrant.Driver{Dir: dir, Exec: groupExec(dir)}
	verdict, err := v.Validate(ctx, append(env, "VAGRANT_DEFAULT_PROVIDER="+p.Name())...)
	if err != nil {
		return "", fmt.Errorf("the rendered Vagrantfile for %s is rejected by Vagrant: %w", p.Name(), err)
	}
	return strings.TrimSpace(vagrant.LastLines(verdict, 1)), nil
}
