#!/bin/bash
# build-box.sh builds a libvirt Vagrant box for labctl, offline, with mmdebstrap.
# It is run by `labctl box build` (lab/box.go), which sets every variable below;
# the cache key of the box is derived from this file's text and those variables.
#   RELEASE   Debian release (bullseye, bookworm, trixie, forky)
#   KERNEL_SUITE  apt suite of the kernel (empty: the release's own; else any suite whose
#             source line MIRRORS carries: bookworm-backports, bullseye into forky, ...)
#   APT_PINS  an apt preferences file: what comes from suites other than RELEASE (the kernel,
#             LXC); empty: nothing
#   KERNEL_LATE  1 when the kernel comes from another release: it is installed after the
#             userland, once its linux-base's hooks are where the userland's run-parts runs them
#   MERGED_USR   1 for an older userland that takes a newer kernel (modules in /usr/lib/modules)
#   PACKAGES  space-separated packages baked into the box
#   LAB_USER  the lab user (NOPASSWD sudo, key-only SSH)
#   PUBKEY    path of the public key authorised for LAB_USER
#   PRIVKEY   path of the matching private key, shipped inside the box
#   OUT       path of the box file to write (.box)
#   WORK      scratch directory (emptied by the caller)
#   DISK_GB   virtual size of the root disk in GiB
#   MIRRORS   newline-separated apt source lines ("deb URI SUITE COMPONENTS")
#   LXC_TREE  a tar of LXC built from source (lab/build's build-lxc.sh): laid over the release's
#             LXC, whose packages are then held (empty: none)
#   MODE      mmdebstrap's mode: root (as root) or unshare (a normal user)
#   NS        the command prefix that runs a command over the tree's owners as they are: empty
#             for root; for a normal user, unshare over the user's subordinate ids
# One recipe either way: files from outside go in with mmdebstrap's copy-in (hooks in unshare
# mode run as subordinate ids, which cannot read the user's private directories); mmdebstrap
# writes a tar (owners as in the tree) into a pipe, unpacked there and made an ext4 file system inside
# NS, so a box built by root or by a user is the same.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
MODE=${MODE:-root}
read -r -a ns <<<"${NS:-}"
: "${RELEASE:?} ${PACKAGES:?} ${LAB_USER:?} ${PUBKEY:?} ${PRIVKEY:?} ${OUT:?} ${WORK:?} ${DISK_GB:?} ${MIRRORS:?}"

step() { printf '%s\n' "==> $*"; }

mapfile -t mirrors <<<"$MIRRORS"
# As root the temporary tree stays in the work directory; in unshare mode it must be
# reachable by the subordinate ids, so mmdebstrap keeps it in /tmp (and removes it).
[ "$MODE" != root ] || export TMPDIR="$WORK"

# The mirror's copy of a suite's Release file can be past its Valid-Until (testing suites,
# backports): apt here, and later in the guest, takes it as it is.
novalid='Acquire::Check-Valid-Until "false";'
pins=()
if [ -n "${APT_PINS:-}" ]; then
  printf '%s\n' "$APT_PINS" > "$WORK/10-labctl-pins"
  pins=(--setup-hook='mkdir -p "$1/etc/apt/preferences.d"' --setup-hook="copy-in \"$WORK/10-labctl-pins\" /etc/apt/preferences.d")
fi
packages=$PACKAGES
late=()
if [ "${KERNEL_LATE:-}" = 1 ]; then
  # A newer linux-base keeps its hooks in /usr/share/kernel/*.d, which an older run-parts
  # cannot run ("run-parts: missing operand"): they move to /etc/kernel/*.d first.
  packages=$(tr ' ' '\n' <<<"$PACKAGES" | grep -vx linux-image-amd64 | tr '\n' ' ')
  apt='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends'
  late=(--customize-hook="$apt linux-base"
    --customize-hook='for d in preinst postinst prerm postrm; do [ -d "$1/usr/share/kernel/$d.d" ] || continue; mkdir -p "$1/etc/kernel/$d.d"; for f in "$1/usr/share/kernel/$d.d"/*; do [ -e "$f" ] && mv "$f" "$1/etc/kernel/$d.d/"; done; done'
    --customize-hook="$apt linux-image-amd64")
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
merged=()
[ "${MERGED_USR:-}" != 1 ] || merged=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)

step "mmdebstrap $RELEASE, kernel from ${KERNEL_SUITE:-$RELEASE} (mode $MODE, ${#mirrors[@]} apt sources from the host)"
mmdebstrap --variant=minbase --mode="$MODE" --format=tar \
  --aptopt="$novalid" "${pins[@]}" "${merged[@]}" \
  --customize-hook='echo '"'$novalid'"' > "$1/etc/apt/apt.conf.d/10-labctl-valid-until"' \
  --include="$(tr ' ' ',' <<<"$packages" | sed 's/,*$//')" \
  "${late[@]}" \
  "${lxctree[@]}" \
  --customize-hook='chroot "$1" useradd -m -s /bin/bash -G sudo '"$LAB_USER" \
  --customize-hook='echo "'"$LAB_USER"' ALL=(ALL) NOPASSWD:ALL" > "$1/etc/sudoers.d/90-labctl"; chmod 0440 "$1/etc/sudoers.d/90-labctl"' \
  --customize-hook='install -d -m 0700 "$1/home/'"$LAB_USER"'/.ssh"' \
  --customize-hook='copy-in "'"$PUBKEY"'" /home/'"$LAB_USER"'/.ssh' \
  --customize-hook='mv "$1/home/'"$LAB_USER"'/.ssh/'"$(basename "$PUBKEY")"'" "$1/home/'"$LAB_USER"'/.ssh/authorized_keys"; chmod 0600 "$1/home/'"$LAB_USER"'/.ssh/authorized_keys"; chroot "$1" chown -R '"$LAB_USER:$LAB_USER"' /home/'"$LAB_USER"'/.ssh' \
  --customize-hook='printf "%s\n" "[Match]" "Name=en* eth*" "" "[Network]" "DHCP=yes" > "$1/etc/systemd/network/10-dhcp.network"; chroot "$1" systemctl enable systemd-networkd' \
  --customize-hook='printf "UseDNS no\nPasswordAuthentication no\n" > "$1/etc/ssh/sshd_config.d/10-labctl.conf"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*; mkdir -p "$1/etc/systemd/system/ssh.service.d"; printf "%s\n" "[Service]" "ExecStartPre=" "ExecStartPre=/usr/bin/ssh-keygen -A" "ExecStartPre=/usr/sbin/sshd -t" > "$1/etc/systemd/system/ssh.service.d/10-hostkeys.conf"' \
  --customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"; echo labctl > "$1/etc/hostname"; printf "127.0.0.1 localhost\n127.0.1.1 labctl\n" > "$1/etc/hosts"; : > "$1/etc/machine-id"' \
  --customize-hook='chroot "$1" systemctl enable ssh qemu-guest-agent 2>/dev/null || true' \
  --customize-hook='chroot "$1" systemctl mask lxc.service lxc-monitord.service 2>/dev/null || true' \
  --customize-hook='copy-out /boot "'"$WORK"'"' \
  "$RELEASE" - "${mirrors[@]}" |
  # /dev is the kernel's devtmpfs at boot: its nodes are not unpacked (a user namespace cannot
  # make them). The tree is unpacked, made a file system and removed inside NS.
  "${ns[@]}" bash -euc 'mkdir "$1/rootfs"; tar --xattrs --xattrs-include="*" --exclude="./dev/*" -C "$1/rootfs" -xpf -
  echo "==> root filesystem image ($3 GiB sparse, ext4)"
  truncate -s "$3G" "$2"; mkfs.ext4 -q -F -L labctl-root -d "$1/rootfs" "$2"; rm -rf "$1/rootfs"' - "$WORK" "$WORK/root.raw" "$DISK_GB"
raw="$WORK/root.raw"
mkdir -p "$WORK/box"
qemu-img convert -O qcow2 "$raw" "$WORK/box/box.img"
rm -f "$raw"

step "box metadata, kernel $(ls -1 "$WORK"/boot/vmlinuz-* | sort -V | tail -n 1 | sed 's/.*vmlinuz-//') and initrd"
cp "$(ls -1 "$WORK"/boot/vmlinuz-* | sort -V | tail -n 1)" "$WORK/box/vmlinuz"
cp "$(ls -1 "$WORK"/boot/initrd.img-* | sort -V | tail -n 1)" "$WORK/box/initrd.img"
chmod 0644 "$WORK/box/vmlinuz" "$WORK/box/initrd.img"
install -m 0600 "$PRIVKEY" "$WORK/box/vagrant_key"
printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$DISK_GB" > "$WORK/box/metadata.json"
cat > "$WORK/box/Vagrantfile" <<VF
# Box Vagrantfile written by labctl's build-box.sh: direct kernel boot, the box's own key.
Vagrant.configure("2") do |config|
  config.ssh.username = "$LAB_USER"
  config.ssh.private_key_path = File.expand_path("vagrant_key", __dir__)
  config.ssh.insert_key = false
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.expand_path("vmlinuz", __dir__)
    lv.initrd = File.expand_path("initrd.img", __dir__)
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
  end
end
VF
step "packing $(du -sh "$WORK/box" | cut -f1) into $OUT"
tar -C "$WORK/box" -cf "$OUT.part" metadata.json Vagrantfile box.img vmlinuz initrd.img vagrant_key
mv "$OUT.part" "$OUT"
