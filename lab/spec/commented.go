package spec

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// fieldDocs says in a line what each lab.yaml field is for; Commented puts it above the field.
var fieldDocs = map[string]string{
	"name":                    "lab name: state in tmp/<name>/, libvirt names labctl-<name>_*",
	"box":                     "box.release: a Debian release labctl builds (bullseye, bookworm, trixie, forky); or box.name: an existing Vagrant box",
	"box.kernel":              "with box.release: the apt suite of the box's kernel: empty (the release's own) or <release>-backports",
	"provider":                "virtualbox, libvirt, or auto (libvirt for boxes labctl builds)",
	"cpus":                    "VM size: CPUs",
	"memory":                  "VM size: memory in MiB",
	"accelerator":             "auto (kvm only where it can boot a stock kernel, else tcg), kvm or tcg",
	"boot_timeout":            "seconds a boot may take to answer SSH (Vagrant's boot_timeout); one more boot after that",
	"libvirt":                 "auto (system for root, else session), session (your own daemon, qemu:///session) or system (qemu:///system: root or group libvirt)",
	"kernel":                  "constraint the guest kernel must satisfy (compared on its version core)",
	"disk":                    "the extra data disk that becomes the btrfs filesystem",
	"disk.size":               "virtual size (MiB, GiB, TiB; sparse)",
	"disk.image":              "VirtualBox disk file, relative to tmp/<lab>/, created only if absent",
	"disk.bus":                "only sata",
	"disk.controller":         "VirtualBox storage controller",
	"disk.port":               "SATA port (0 holds the root disk)",
	"disk.device":             "SATA device on the port",
	"disk.guest_device":       "pin the guest device (e.g. /dev/sdb); empty: found by serial and size, never the root disk",
	"btrfs":                   "where and how the data disk is mounted",
	"btrfs.mount_point":       "mount point, and the user's lxc.lxcpath",
	"btrfs.options":           "fstab options (user_subvol_rm_allowed lets lxc-destroy remove an unprivileged btrfs container)",
	"btrfs.fstab_by":          "uuid, or device (needs disk.guest_device)",
	"user":                    "the unprivileged user that owns the containers",
	"idmap":                   "the user's subordinate uid/gid range",
	"network":                 "container network: veth on the guest's bridge, lxc-usernet allowance",
	"lxc":                     "where LXC comes from and which version the lab targets",
	"lxc.suite":               "apt suite to install LXC from when the box lacks it (e.g. trusty-backports)",
	"lxc.version":             "the LXC version `labctl render` renders the dialect of (provisioning uses the guest's)",
	"lxc.expect":              "constraint the guest's LXC must satisfy (preflight fails otherwise)",
	"containers":              "created in order, each inside its parent (empty parent: the VM)",
	"containers.parent":       "the container it runs in; empty for a container of the VM",
	"containers.unprivileged": "true for containers of the VM: created by the user with the idmap",
	"containers.backing":      "btrfs (containers of the VM) or dir",
	"containers.image":        "type local (built by labctl), download, busybox, or template",
	"containers.nesting":      "let it run containers of its own",
	"containers.apparmor":     "generated (confined: with-nesting profile; nested containers keep it) or unconfined",
}

// Commented renders the spec as a complete lab.yaml, every field with a comment that says
// what it is for: what `labctl init` writes. Parse reads it back into the same spec.
func Commented(s *Spec, header string) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(s); err != nil {
		return nil, err
	}
	annotate(&doc, "")
	doc.HeadComment = header
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// annotate puts each field's doc above its key; prefix is the path of the mapping.
func annotate(n *yaml.Node, prefix string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if doc, ok := fieldDocs[p]; ok && k.HeadComment == "" {
				k.HeadComment = doc
			}
			annotate(v, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if i == 0 {
				annotate(item, prefix)
			}
		}
	}
}

// Init is the lab.yaml `labctl init` writes for a preset: the preset, complete and commented.
func Init(preset string) ([]byte, error) {
	s, err := Preset(preset)
	if err != nil {
		return nil, err
	}
	return Commented(s, fmt.Sprintf("lab.yaml written by `labctl init --preset %s`: the preset, every field with its default.\n"+
		"Edit it, then `labctl validate` and `labctl up` (./lab.yaml is used when present).\n"+
		"Every field is documented in the README (\"lab.yaml\").", preset))
}
