package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// VagrantValidate renders the spec's Vagrantfile into a temporary directory and runs
// `vagrant validate` on it, in the environment the provider sets up for it (libvirt: a live
// libvirtd, started when nothing runs it; VirtualBox on a host without it: a stub
// VBoxManage, so that Vagrant still checks the provider's settings). It returns Vagrant's
// verdict; what it started is reported on out. It writes nothing of any lab's.
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
	env, vin, err := p.ValidateEnv(ctx, dir, out)
	if err != nil {
		return "", err
	}
	vf, err := render.Vagrantfile(s, vin)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, labdir.Vagrantfile), vf, 0o644); err != nil {
		return "", err
	}
	name := p.Info().Name
	v := &vagrant.Driver{Dir: dir, Provider: name, Exec: groupExec(dir)}
	verdict, err := v.Validate(ctx, env...)
	if err != nil {
		return "", fmt.Errorf("the rendered Vagrantfile for %s is rejected by Vagrant: %w", name, err)
	}
	return strings.TrimSpace(host.LastLines(verdict, 1)), nil
}
