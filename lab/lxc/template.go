package lxc

import _ "embed"

// ImageTemplate is labctl's own LXC template (lxc-labctl.sh): it makes a container from one
// of labctl's images (meta.tar.xz, and rootfs.tar.zst: LXC's "local" template reads xz only,
// which takes ~16 s of a cold provision to decompress under emulation; zstd ~2.5 s). It is put
// next to the image in the guest and named to lxc-create by its path.
//
//go:embed lxc-labctl.sh
var ImageTemplate string

// ImageTemplateName is the template's file name next to an image in the guest.
const ImageTemplateName = "lxc-labctl"

// ImageMeta is the metadata tarball (meta.tar.xz) of labctl's images, as ImageTemplate (and
// LXC's "local" template) reads it: the distribution's configuration for a container without
// and with an id map, what a container with an id map does not unpack, and the files that
// get the container's name.
var ImageMeta = map[string]string{
	"config":        "lxc.include = LXC_TEMPLATE_CONFIG/debian.common.conf\nlxc.arch = x86_64\n",
	"config-user":   "lxc.include = LXC_TEMPLATE_CONFIG/debian.common.conf\nlxc.include = LXC_TEMPLATE_CONFIG/debian.userns.conf\nlxc.arch = x86_64\n",
	"excludes-user": "./dev/*\n",
	"templates":     "/etc/hostname\n/etc/hosts\n",
}
