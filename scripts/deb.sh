#!/bin/bash
# deb.sh builds labctl's Debian package (make deb) into bin/: the static binary, bash/zsh/fish
# completions and man pages generated from the CLI itself, the README. Its Depends and
# Recommends are what `make deps` installs (scripts/deps.sh). Prints the package's path.
#   scripts/deb.sh [BIN]      BIN: a labctl built by `make build` (default bin/labctl)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/labctl}
[ -x "$bin" ] || { echo "deb: $bin is not built: run make build" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "deb: dpkg-deb is not installed (apt-get install dpkg-dev)" >&2; exit 1; }
# A Debian version starts with a digit: the tag without its v, or 0.0~git<commit date>.<commit>.
if tag=$(git describe --tags --exact-match 2>/dev/null); then
  version=${tag#v}
else
  version="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
install -D -m 0755 "$bin" "$root/usr/bin/labctl"
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/man/man1" "$root/usr/share/doc/labctl" "$root/DEBIAN"
"$bin" completion bash >"$root/usr/share/bash-completion/completions/labctl"
"$bin" completion zsh >"$root/usr/share/zsh/vendor-completions/_labctl"
"$bin" completion fish >"$root/usr/share/fish/vendor_completions.d/labctl.fish"
"$bin" gen-man "$work/man"
for f in "$work"/man/*.1; do gzip -9n <"$f" >"$root/usr/share/man/man1/$(basename "$f").gz"; done
gzip -9n <README.md >"$root/usr/share/doc/labctl/README.md.gz"
cat >"$root/usr/share/doc/labctl/copyright" <<'EOT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: labctl
Files: *
Copyright: the labctl developers
License: see the labctl source repository
EOT
size=$(du -sk "$root/usr" | cut -f1)
cat >"$root/DEBIAN/control" <<EOT
Package: labctl
Version: $version
Architecture: amd64
Maintainer: labctl developers <labctl@localhost>
Installed-Size: $size
Section: admin
Priority: optional
Depends: vagrant, vagrant-libvirt, qemu-system-x86, qemu-utils, libvirt-daemon-system, libvirt-clients, mmdebstrap, openssh-client, xz-utils, zstd, e2fsprogs, procps, util-linux, uidmap
Recommends: btrfs-progs, openssh-server
Description: nested, unprivileged LXC labs in a Vagrant VM, on demand
 labctl recreates a lab that people otherwise build by hand from a long recipe: a
 Vagrant VM with an extra disk formatted as btrfs, a normal user with a subordinate
 uid/gid range, an unprivileged LXC container stored on that disk, and containers
 nested inside it. It proves the lab with its built-in e2e suite (labctl test) and runs
 it across a kernel/LXC matrix (labctl matrix run). Boxes and images are built offline
 from the host's own Debian mirror.
EOT
deb=bin/labctl_${version}_amd64.deb
mkdir -p bin
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
