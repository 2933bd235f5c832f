#!/bin/bash
# deps.sh installs the host packages labctl needs, idempotently: nothing is downloaded when
# everything is present. Run by `make deps` (and so by `make up` and `make test`).
set -euo pipefail
pkgs=(vagrant vagrant-libvirt qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients
  mmdebstrap btrfs-progs openssh-server openssh-client xz-utils zstd e2fsprogs procps util-linux
  uidmap)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} host packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}: run as root (sudo make deps)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# No recommends: they pull in a desktop's worth of packages (and no libvirt network is wanted).
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} package(s)"
