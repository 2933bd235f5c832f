package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// VagrantValidate renders the spec's Vagrantfile into a temporary directory and runs
// `vagrant validate` on it. VirtualBox is validated through a stub VBoxManage when the host
// has none: Vagrant then checks the provider's settings ("The following settings shouldn't
// exist"), which it skips for an unusable provider. It returns Vagrant's verdict.
func VagrantValidate(ctx context.Context, s *Spec) (string, error) {
	dir, err := os.MkdirTemp("", "labctl-validate-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// Fixed host values: validation does not depend on them.
	vf, err := RenderVagrantfile(s, VagrantInputs{SSHPort: 2222, Accel: "tcg", Pool: Pool})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), vf, 0o644); err != nil {
		return "", err
	}
	provider := s.ProviderFor()
	if provider == "libvirt" && !virshOK(ctx) {
		return "", fmt.Errorf("vagrant validate for libvirt needs a running libvirtd: run `labctl doctor --fix` (or `labctl validate`, which starts it)")
	}
	env := []string{"VAGRANT_DEFAULT_PROVIDER=" + provider}
	if provider == "virtualbox" {
		if _, err := exec.LookPath("VBoxManage"); err != nil {
			stubDir := filepath.Join(dir, "stub-bin")
			if err := os.MkdirAll(stubDir, 0o755); err != nil {
				return "", err
			}
			stub := "#!/bin/sh\n# labctl's stand-in for VBoxManage: only answers --version, so that\n# `vagrant validate` checks VirtualBox settings on a host without VirtualBox.\ncase \"$1\" in --version|-v) echo 7.0.14r161095; exit 0;; esac\necho \"VBoxManage stub: $*: not available\" >&2\nexit 1\n"
			if err := os.WriteFile(filepath.Join(stubDir, "VBoxManage"), []byte(stub), 0o755); err != nil {
				return "", err
			}
			env = append(env, "PATH="+stubDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
	}
	v := &Vagrant{Dir: dir}
	out, err := v.Validate(ctx, env...)
	if err != nil {
		return "", fmt.Errorf("the rendered Vagrantfile for %s is rejected by Vagrant: %w", provider, err)
	}
	return strings.TrimSpace(lastLines(out, 1)), nil
}
