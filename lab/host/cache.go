// Package host prepares and inspects the machine labctl runs on: the cache directories, the
// accelerator, free 127.0.0.1 ports, the libvirt daemons, storage pool, domains and volumes,
// the host's own apt sources, and the doctor that checks all of it with a fix for each.
package host

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/lab/provider"
)

// CacheDir is where labctl keeps boxes, images and Vagrant's home, outside the repository:
// $LABCTL_CACHE, else /var/cache/labctl for root (qemu runs as libvirt-qemu and cannot enter
// /root), else $XDG_CACHE_HOME/labctl or ~/.cache/labctl.
func CacheDir() string {
	if d := os.Getenv("LABCTL_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/labctl"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "labctl")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "labctl")
}

// VagrantHome is VAGRANT_HOME for every labctl call of vagrant.
func VagrantHome() string { return filepath.Join(CacheDir(), "vagrant.d") }

// VagrantBoxKey is the private key of a box labctl built, where Vagrant keeps the box: the
// path `vagrant ssh-config` names for it.
func VagrantBoxKey(box string) string {
	return filepath.Join(VagrantHome(), "boxes", strings.ReplaceAll(box, "/", "-VAGRANTSLASH-"), "0", provider.Builder(), "vagrant_key")
}
