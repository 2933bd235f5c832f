package render

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"

	labctl "github.com/labctl/labctl"
	"github.com/labctl/labctl/lab/provider"
	"github.com/labctl/labctl/lab/release"
	"github.com/labctl/labctl/lab/spec"
)

// VagrantInputs are the values of a Vagrantfile that come from the host, not the spec.
type VagrantInputs struct {
	// SSHPort is the 127.0.0.1 port forwarded to the guest's sshd (libvirt).
	SSHPort int
	// Accel is the resolved accelerator: kvm or tcg (libvirt).
	Accel string
	// Pool is the libvirt storage pool for the box and the data disk.
	Pool string
	// Session runs the VM under the user's own libvirt daemon (qemu:///session) instead of
	// the system one (libvirt).
	Session bool
	// SSHKey is the private key of a box labctl built (libvirt), as Vagrant keeps it: the lab's
	// Vagrantfile names it, so that plain `vagrant ssh` in the lab directory works without
	// labctl's VAGRANT_HOME. Empty for a box labctl did not build.
	SSHKey string
	// Console is the absolute path of the file that keeps the guest's serial console
	// (libvirt); empty: the console is not kept.
	Console string
	// LayerBox is the box of the provisioned layer the VM boots from (libvirt), and LayerDisk
	// the lab's data disk labctl made beforehand as an overlay of the layer's; empty: the
	// lab's own box and a blank data disk.
	LayerBox, LayerDisk string
}

// DiskSerial is the serial number of the libvirt data disk; the provisioner prefers the disk
// with this serial (and still checks its size and that it is blank).
const DiskSerial = "labctl-data"

type vagrantfileData struct {
	Lab, Box, Provider, DomainPrefix string
	CPUs, Memory, BootTimeout        int
	DiskImage, DiskSizeExpr          string
	DiskSizeMiB                      int64
	Controller                       string
	Port, Device                     int
	SSHPort                          int
	Driver, Pool, DiskSerial         string
	User, SSHKey, Console            string
	LayerDisk                        string
	Session                          bool
	// CmdLine replaces the box's kernel command line ("": the box's own).
	CmdLine string
}

// BoxCmdLine is the kernel command line of the boxes labctl builds (their Vagrantfile, written
// by build-box.sh, says the same: a test holds them together).
const BoxCmdLine = "root=/dev/vda rw console=ttyS0 net.ifnames=0"

// cmdLine is the lab's kernel command line: the box's own, with what box.cgroup v1 needs of
// systemd (force: the switch systemd 257 wants as well); "" when the box's own will do.
func cmdLine(s *spec.Spec) string {
	if s.Box.Cgroup != "v1" {
		return ""
	}
	line := BoxCmdLine + " systemd.unified_cgroup_hierarchy=0"
	if su, err := release.SuiteOf(s.Box.Release); err == nil && su.CgroupV1 == "force" {
		line += " SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"
	}
	return line
}

// rb quotes s as a Ruby double-quoted string literal.
func rb(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `#`, `\#`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Vagrantfile renders Vagrantfile.tmpl for the spec's provider.
func Vagrantfile(s *spec.Spec, in VagrantInputs) ([]byte, error) {
	name := s.ProviderFor()
	mib, err := s.Disk.SizeMiB()
	if err != nil {
		return nil, err
	}
	d := vagrantfileData{
		Lab: s.Name, Box: s.BoxName(), Provider: name, DomainPrefix: s.DomainPrefix(),
		CPUs: s.CPUs, Memory: s.Memory, BootTimeout: s.BootTimeout,
		DiskImage: s.Disk.Image, DiskSizeMiB: mib, DiskSizeExpr: fmt.Sprint(mib),
		Controller: s.Disk.Controller, Port: s.Disk.Port, Device: s.Disk.Device,
		SSHPort: in.SSHPort, Pool: in.Pool, DiskSerial: DiskSerial,
		User: s.User, SSHKey: in.SSHKey, Session: in.Session, Console: in.Console,
		CmdLine: cmdLine(s), LayerDisk: in.LayerDisk,
	}
	if in.LayerBox != "" {
		d.Box = in.LayerBox
	}
	if mib%1024 == 0 {
		d.DiskSizeExpr = fmt.Sprintf("%d * 1024", mib/1024) // the recipe's own spelling (MB)
	}
	info, err := provider.Of(name)
	if err != nil {
		return nil, fmt.Errorf("render Vagrantfile: %w", err)
	}
	if info.Libvirt {
		switch in.Accel {
		case "kvm":
			d.Driver = "kvm"
		case "tcg":
			d.Driver = "qemu"
		default:
			return nil, fmt.Errorf("render Vagrantfile: accelerator %q is not resolved: use kvm or tcg", in.Accel)
		}
		if in.SSHPort < 1 || in.SSHPort > 65535 {
			return nil, fmt.Errorf("render Vagrantfile: SSH port %d is out of range", in.SSHPort)
		}
		if !spec.IsName(in.Pool) {
			return nil, fmt.Errorf("render Vagrantfile: libvirt pool %q is not a valid name", in.Pool)
		}
		if in.Console != "" && !filepath.IsAbs(in.Console) {
			return nil, fmt.Errorf("render Vagrantfile: console log %q is not an absolute path (libvirt resolves it in its own directory)", in.Console)
		}
	}
	t, err := template.New("Vagrantfile.tmpl").Option("missingkey=error").
		Funcs(template.FuncMap{"rb": rb}).Parse(labctl.VagrantfileTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse Vagrantfile.tmpl: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render Vagrantfile: %w", err)
	}
	return b.Bytes(), nil
}
