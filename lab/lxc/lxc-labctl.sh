#!/bin/sh
# labctl's LXC template: makes a container from one of labctl's images, as LXC's "local"
# template does, with the rootfs compressed by zstd (decompressed in a few seconds under
# emulation, where xz takes ~16). lxc-create runs it:
#   lxc-create -n NAME -B BACKING -t /path/lxc-labctl -- --metadata meta.tar.xz --fstree rootfs.tar.zst
# and adds --name, --path, --rootfs, and --mapped-uid/--mapped-gid for a container with an
# id map (an unprivileged one), which this template then runs in.
#
# The metadata tarball holds config (config-user for a container with an id map): the
# distribution's configuration, put before the container's own; excludes-user: paths not
# unpacked into a container with an id map (device nodes it may not create); templates:
# files of the rootfs in which LXC_NAME is replaced by the container's name.
set -eu
name= path= rootfs= meta= fstree= mapped=
while [ $# -gt 0 ]; do
	# lxc-create passes its own arguments as --name=VALUE; ours come as --metadata VALUE.
	case "$1" in
	--*=*) opt=${1%%=*} val=${1#*=}; shift ;;
	*) opt=$1; [ $# -ge 2 ] || { echo "lxc-labctl: $1 needs a value" >&2; exit 1; }; val=$2; shift 2 ;;
	esac
	case "$opt" in
	--name) name=$val ;;
	--path) path=$val ;;
	--rootfs) rootfs=$val ;;
	-m | --metadata) meta=$val ;;
	-f | --fstree) fstree=$val ;;
	--mapped-uid) mapped=$val ;;
	--mapped-gid) ;;
	*) echo "lxc-labctl: unknown argument $opt" >&2; exit 1 ;;
	esac
done
for v in name path rootfs meta fstree; do
	eval "[ -n \"\$$v\" ]" || { echo "lxc-labctl: --$v is missing" >&2; exit 1; }
done
for tool in tar zstd xz sed; do
	command -v "$tool" >/dev/null || { echo "lxc-labctl: $tool is not installed" >&2; exit 1; }
done
suffix=
if [ -n "$mapped" ] && [ "$mapped" != -1 ]; then
	suffix=-user
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$meta" -C "$tmp"
pick() { if [ -e "$tmp/$1$suffix" ]; then echo "$tmp/$1$suffix"; else echo "$tmp/$1"; fi; }
[ -f "$(pick config)" ] || { echo "lxc-labctl: $meta holds no config" >&2; exit 1; }

echo "Unpacking the rootfs"
# What a container with an id map does not unpack (device nodes it may not create) is left out
# too where this template itself runs in a user namespace (a privileged container created
# inside an unprivileged one): mknod is refused there as well.
excludes=$(pick excludes)
if ! grep -Eq '^ *0 +0 +4294967295 *$' /proc/self/uid_map 2>/dev/null && [ -f "$tmp/excludes-user" ]; then
	excludes=$tmp/excludes-user
fi
set --
if [ -f "$excludes" ]; then
	while read -r x; do set -- "$@" "--exclude=$x"; done <"$excludes"
fi
zstd -dc "$fstree" | tar --anchored "$@" --numeric-owner -xpf - -C "$rootfs"
mkdir -p "$rootfs/dev/pts"

# The distribution's configuration first, then what lxc-create wrote (the id map, the
# network, the rootfs), so that the container's own lines win.
own=$(cat "$path/config")
{
	echo "# Distribution configuration"
	sed -e "s#LXC_TEMPLATE_CONFIG#/usr/share/lxc/config#g" "$(pick config)"
	echo
	echo "# Container specific configuration"
	printf '%s\n' "$own"
	echo "lxc.uts.name = $name"
} >"$path/config"
if [ -f "$(pick templates)" ]; then
	# Only files inside the rootfs: an entry with a ".." part, or one that leads out of the
	# rootfs through a link (resolved here, not in the container), is skipped.
	root=$(cd "$rootfs" && pwd -P)
	while read -r f; do
		case "/$f/" in */../*) echo "lxc-labctl: templates: $f is not a path inside the rootfs: skipped" >&2; continue ;; esac
		[ -f "$rootfs/$f" ] || continue
		real=$(readlink -f -- "$rootfs/$f") || continue
		case "$real" in
		"$root"/*) sed -i "s#LXC_NAME#$name#g" "$real" ;;
		*) echo "lxc-labctl: templates: $f leads out of the rootfs (to $real): skipped" >&2 ;;
		esac
	done <"$(pick templates)"
fi
exit 0
