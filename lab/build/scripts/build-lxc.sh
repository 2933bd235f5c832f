#!/bin/bash
# build-lxc.sh builds LXC from source for a Debian release, offline, in a build chroot that
# mmdebstrap makes (and throws away) from the host's apt sources. It is run by lab/build
# (lxcsrc.go), which sets every variable below; the build's cache key is derived from this
# file's text, the release and the source (its checksum, or the commit).
#   RELEASE   Debian release whose userland (libc) the build is for
#   SRC       the source as a tarball (a release tarball, or `git archive` of the commit)
#   OUT       path of the tree to write: a tar of what the build installs under /usr
#   WORK      scratch directory (emptied by the caller)
#   MIRRORS   newline-separated apt source lines ("deb URI SUITE COMPONENTS")
#   MODE      mmdebstrap's mode: root (as root) or unshare (a normal user)
# meson builds (LXC 5.0 on) and autotools builds (before) alike; paths as Debian's packages
# have them (/usr/libexec/lxc, the multiarch libdir), no manuals, tests or examples. /etc and
# the systemd units stay out of the tree: the release's own package keeps them.
set -euo pipefail
: "${RELEASE:?} ${SRC:?} ${OUT:?} ${WORK:?} ${MIRRORS:?}"
MODE=${MODE:-root}
mapfile -t mirrors <<<"$MIRRORS"
[ "$MODE" != root ] || export TMPDIR="$WORK"

cat > "$WORK/inside.sh" <<'INSIDE'
#!/bin/bash
# Runs in the build chroot: unpack /build/src.tar, build, install into /build/tree, pack.
set -euo pipefail
cd /build
mkdir src && tar -C src -xf src.tar
cd src/"$(ls src | head -n 1)"
libdir=lib/x86_64-linux-gnu
jobs=$(nproc)
if [ -f meson.build ]; then
  # Only the options this version has (they change between 5.0, 6.0 and 7.0).
  opts=()
  opt() { grep -q "option('$1'" meson_options.txt && opts+=("-D$1=$2") || true; }
  opt man false; opt tests false; opt examples false; opt coverity-build false; opt api-docs false
  opt pam-cgroup false; opt openssl false; opt selinux false; opt dbus false; opt sd-bus disabled
  opt io-uring-event-loop false; opt specfile false; opt apparmor true; opt seccomp true
  opt capabilities true; opt install-init-files false
  echo "==> meson setup (LXC $(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" meson.build | head -n 1))"
  meson setup build --prefix=/usr --libdir="$libdir" --libexecdir=libexec --sysconfdir=/etc \
    --localstatedir=/var --buildtype=plain -Db_lto=false "${opts[@]}"
  echo "==> compile ($jobs jobs)"
  ninja -C build -j "$jobs"
  echo "==> install into the tree"
  DESTDIR=/build/tree meson install -C build --no-rebuild >/dev/null
else
  echo "==> autogen + configure"
  ./autogen.sh
  ./configure --prefix=/usr --libdir="/usr/$libdir" --libexecdir=/usr/libexec --sysconfdir=/etc \
    --localstatedir=/var --with-distro=debian --disable-doc --disable-api-docs --disable-examples \
    --disable-werror --disable-python --disable-lua --disable-cgmanager --disable-selinux \
    --disable-openssl --disable-pam --disable-tests --enable-apparmor --enable-seccomp \
    --enable-capabilities --with-init-script=systemd --with-systemdsystemunitdir=/lib/systemd/system
  echo "==> make ($jobs jobs)"
  # Older sources meet a newer libc and compiler: no -Werror, and major()/minor() from
  # sys/sysmacros.h, which sys/types.h stopped including (glibc 2.28).
  make -j "$jobs" CFLAGS="-g -O2 -Wall -Wno-error -D_GNU_SOURCE -include sys/sysmacros.h"
  echo "==> install into the tree"
  make install DESTDIR=/build/tree >/dev/null
fi
cd /build/tree
rm -rf etc lib/systemd usr/lib/systemd var
echo "==> tree: $(find . -type f | wc -l) files, lxc-create --version: $(LD_LIBRARY_PATH="$PWD/usr/$libdir" ./usr/bin/lxc-create --version 2>&1 || true)"
tar -cpf /build/tree.tar .
INSIDE

novalid='Acquire::Check-Valid-Until "false";'
deps=(build-essential pkg-config meson ninja-build autoconf automake libtool libcap-dev libseccomp-dev
  libapparmor-dev python3 xz-utils bzip2 zstd)
echo "==> build chroot: mmdebstrap $RELEASE with the build tools (mode $MODE, ${#mirrors[@]} apt sources from the host)"
mmdebstrap --variant=apt --mode="$MODE" --aptopt="$novalid" \
  --include="$(IFS=,; echo "${deps[*]}")" \
  --customize-hook='mkdir -p "$1/build"' \
  --customize-hook="copy-in \"$SRC\" /build" \
  --customize-hook="mv \"\$1/build/$(basename "$SRC")\" \"\$1/build/src.tar\"" \
  --customize-hook="copy-in \"$WORK/inside.sh\" /build" \
  --customize-hook='chroot "$1" bash /build/inside.sh' \
  --customize-hook="copy-out /build/tree.tar \"$WORK\"" \
  "$RELEASE" /dev/null "${mirrors[@]}"
mv "$WORK/tree.tar" "$OUT"
echo "==> LXC tree $(du -h "$OUT" | cut -f1)"
