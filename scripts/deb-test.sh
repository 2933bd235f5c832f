#!/bin/bash
# deb-test.sh proves labctl's Debian package as a user installs it: it builds the package
# (scripts/deb.sh), installs it into a clean Debian 12 chroot made by mmdebstrap from the host's
# own apt sources (apt resolves its dependencies there: nothing of `make deps`, no Go, no source
# tree), and runs there labctl version, render, test --help and doctor. The chroot is thrown
# away; its log is tmp/deb-test/chroot.log. Run as root (make test-deb; make test runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "deb-test: run as root (mmdebstrap --mode=root)" >&2; exit 1; }
out=tmp/deb-test
mkdir -p "$out"
deb=$(scripts/deb.sh)
echo "deb-test: $deb ($(du -h "$deb" | cut -f1))"
log=$PWD/$out/chroot.log
checks=$PWD/$out/checks.log
: >"$checks"
# The checks run in the chroot, as a user would after `apt install ./labctl_*.deb`, in an empty
# directory; doctor fails on the daemon a chroot does not run, and says so: its tool lines count.
cat >"$out/checks.sh" <<'EOT'
set -eu
cd "$(mktemp -d)"
echo "== dpkg -s labctl"; dpkg -s labctl | sed -n 's/^\(Status\|Version\):/\1:/p'
echo "== labctl version"; labctl version
echo "== labctl render"; labctl render --preset bookworm -o r >/dev/null && ls r/Vagrantfile r/guest/etc/subuid.lines
echo "== labctl test --help"; labctl test --help | head -n 3
echo "== labctl doctor"; labctl doctor || echo "(doctor exit $?)"
echo "== man labctl-up"; ls /usr/share/man/man1/labctl-up.1.gz
echo "== completion"; ls /usr/share/bash-completion/completions/labctl
EOT
start=$SECONDS
# Sources of the host's mirror (mmdebstrap takes the host's apt sources when given none); a
# suite past its Valid-Until is no reason to stop. Recommends stay out, as `make deps` leaves
# them out: libvirt's would define a default network with a bridge.
if ! mmdebstrap --mode=root --variant=apt --format=null \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='APT::Install-Recommends "false"' \
  --customize-hook="copy-in $deb /tmp" \
  --customize-hook="copy-in $out/checks.sh /tmp" \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/'"$(basename "$deb")" \
  --customize-hook='chroot "$1" sh /tmp/checks.sh >'"$checks"' 2>&1' \
  bookworm /dev/null >"$log" 2>&1; then
  echo "deb-test: the chroot failed after $((SECONDS - start))s; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
echo "deb-test: installed with its dependencies into a clean bookworm chroot and checked in $((SECONDS - start))s"
cat "$checks"
fail=0
for want in "Status: install ok installed" "labctl " "go1." "r/Vagrantfile" "labctl test" "ok   tool vagrant" "ok   tool virsh" "ok   tool mmdebstrap" "ok   tool zstd" "labctl-up.1.gz"; do
  grep -qF -- "$want" "$checks" || { echo "deb-test: the checks lack \"$want\"" >&2; fail=1; }
done
exit $fail
