#!/bin/bash
# build-image.sh builds an offline LXC image (rootfs + metadata for `lxc-create -t local`)
# with mmdebstrap. It is run by lab/image.go, which sets every variable below; the image's
# cache key is derived from this file's text, those variables and the overlay's content.
#   RELEASE   Debian release of the container (the guest's own)
#   PACKAGES  space-separated packages of the container (lxc inside, for nesting)
#   OVERLAY   directory copied over the rootfs (the renderer's files for this container)
#   META      directory holding the metadata files (config, config-user, excludes-user, templates)
#   OUT       directory to write rootfs.tar.zst and meta.tar.xz into
#   MIRRORS   newline-separated apt source lines ("deb URI SUITE COMPONENTS")
#   MODE      mmdebstrap's mode: root (as root) or unshare (a normal user)
#   LXC_TREE  a tar of LXC built from source (lab/build's build-lxc.sh): laid over the release's
#             LXC, whose packages are then held (empty: none)
#   APT_PINS  an apt preferences file: what comes from suites other than RELEASE (LXC); empty:
#             nothing
set -euo pipefail
: "${RELEASE:?} ${PACKAGES:?} ${OVERLAY:?} ${META:?} ${OUT:?} ${MIRRORS:?}"
MODE=${MODE:-root}
mapfile -t mirrors <<<"$MIRRORS"
# The overlay goes in file by file with mmdebstrap's copy-in (in unshare mode hooks run as
# subordinate ids, which cannot read the user's private directories), owned by root as the
# renderer says, whoever built it; existing directories keep their owners.
overlay=()
while IFS= read -r f; do
  d=$(dirname "${f#.}")
  overlay+=(--customize-hook="mkdir -p \"\$1$d\"" --customize-hook="copy-in \"$OVERLAY/${f#./}\" $d"
    --customize-hook="chown 0:0 \"\$1${f#.}\"")
done < <(cd "$OVERLAY" && find . -type f | sort)
echo "==> mmdebstrap $RELEASE container rootfs (mode $MODE, ${#mirrors[@]} apt sources from the host)"
# A suite's Release file on the mirror can be past its Valid-Until (testing suites).
novalid='Acquire::Check-Valid-Until "false";'
# No manuals, documentation (but the copyright files) or translations in the container: a
# quarter of its files, which lxc-create would otherwise unpack under emulation each time. The
# same dpkg settings stay in the container for what is installed in it later.
nodocs=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/lintian/*')
pins=()
if [ -n "${APT_PINS:-}" ]; then
  pinfile=$(mktemp -d)/10-labctl-pins
  trap 'rm -rf "$(dirname "$pinfile")"' EXIT
  printf '%s\n' "$APT_PINS" > "$pinfile"
  pins=(--setup-hook='mkdir -p "$1/etc/apt/preferences.d"' --setup-hook="copy-in \"$pinfile\" /etc/apt/preferences.d")
fi
lxctree=()
if [ -n "${LXC_TREE:-}" ]; then
  # Over the release's LXC (its configuration, units, AppArmor profiles and dependencies
  # stay): the built binaries, library, templates and LXC's own config files; apt keeps its
  # hands off the packages.
  # The release's liblxc files the tree does not replace go: ldconfig links the soname to
  # the highest file version (the release's liblxc.so.1.7.0 over LXC 1.1.5's liblxc.so.1.1.5,
  # whose tools then fail "undefined symbol"). The built tools must run, or the build fails.
  tree='$1/tmp/'"$(basename "$LXC_TREE")"
  lxctree=(--customize-hook="copy-in \"$LXC_TREE\" /tmp"
    --customize-hook='tar -C "$1" -xpf "'"$tree"'" && for f in "$1"/usr/lib/*/liblxc.so.*; do [ -e "$f" ] || continue; tar -tf "'"$tree"'" | grep -qxF "./${f#"$1"/}" || rm -f "$f"; done && rm -f "'"$tree"'"'
    --customize-hook='chroot "$1" ldconfig && for p in lxc liblxc1 liblxc-common; do if chroot "$1" dpkg -s $p >/dev/null 2>&1; then chroot "$1" apt-mark hold $p >/dev/null; fi; done && v=$(chroot "$1" lxc-create --version 2>&1) || { echo "LXC from source does not run here: $v" >&2; exit 1; }; echo "==> LXC from source: $v" >&2')
fi
mmdebstrap --variant=minbase --mode="$MODE" --aptopt="$novalid" "${nodocs[@]}" "${pins[@]}" \
  --customize-hook='echo '"'$novalid'"' > "$1/etc/apt/apt.conf.d/10-labctl-valid-until"' \
  --include="$(tr ' ' ',' <<<"$PACKAGES")" \
  "${overlay[@]}" \
  "${lxctree[@]}" \
  --customize-hook='echo LXC_NAME > "$1/etc/hostname"; printf "127.0.0.1 localhost\n127.0.1.1 LXC_NAME\n" > "$1/etc/hosts"; : > "$1/etc/machine-id"' \
  --customize-hook='chroot "$1" systemctl mask systemd-journald-audit.socket >/dev/null 2>&1 || true' \
  --format=tar "$RELEASE" - "${mirrors[@]}" | zstd -q -T0 -9 > "$OUT/rootfs.tar.zst.part"
mv "$OUT/rootfs.tar.zst.part" "$OUT/rootfs.tar.zst"
echo "==> metadata"
tar -C "$META" -cJf "$OUT/meta.tar.xz" .
