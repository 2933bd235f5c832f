#!/bin/bash
# user-run.sh proves labctl as a normal user: as root it makes (once) the unprivileged user
# USER_RUN_USER (default labctl-ci) with a subordinate id range, copies this working tree into
# that user's home, and runs there, as that user and with no sudo: the VM test (TestVM) and the
# e2e suite on the matrix cell CELL (`labctl matrix run`), each against the user's own lab on the
# user's own libvirt daemon (qemu:///session), its caches under the user's XDG directories.
# Then it checks that the run wrote nothing outside the user's home (see the end: no file of the
# user or its subordinate ids elsewhere, not even scratch left in /tmp; nothing changed where a
# system daemon would write for it). The reports land in tmp/user-run/ (files.txt: what it
# found outside).
# Run by `make test` after the root phases (scripts/test.sh), or alone: `make test-user`.
# Usage: scripts/user-run.sh [CELL]   (default bookworm; make test runs the cross cell k5-10-lxc7-0-0)
set -uo pipefail
cell=${1:-bookworm}
cd "$(dirname "$0")/.."
u=${USER_RUN_USER:-labctl-ci}
out=$PWD/tmp/user-run
if [ "$(id -u)" -ne 0 ]; then
  echo "user-run: run as root (it creates the user $u); a normal user runs \`make up\` and \`make test-e2e\` directly" >&2
  exit 2
fi
mkdir -p "$out"
rm -f "$out"/*.txt "$out"/*.log

# The user, once: useradd gives it a home and a subordinate range from /etc/login.defs.
if ! id "$u" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$u"
  echo "user-run: created user $u"
fi
home=$(getent passwd "$u" | cut -d: -f6)
if ! grep -q "^$u:" /etc/subuid || ! grep -q "^$u:" /etc/subgid; then
  echo "user-run: $u has no subordinate id range in /etc/subuid and /etc/subgid (usermod --add-subuids)" >&2
  exit 1
fi

# The mark: every file changed after it was changed by this run (or by something beside it;
# nothing else runs during make test).
mark=$out/mark
: >"$mark"
sleep 1

# This checkout, as it is (uncommitted changes too), without its runtime state and binaries,
# over the user's copy of the last run (its tmp/ kept: the state of what that run left).
runuser -u "$u" -- mkdir -p "$home/labctl"
runuser -u "$u" -- find "$home/labctl" -mindepth 1 -maxdepth 1 ! -name tmp -exec rm -rf {} +
tar -C "$PWD" --exclude=./tmp --exclude=./bin -cf - . | runuser -u "$u" -- tar -xf - -C "$home/labctl"

as_user() {
  runuser -l "$u" -c "cd ~/labctl && export PATH=/usr/local/go/bin:\$PATH GOFLAGS=-buildvcs=false GOTOOLCHAIN=local && $1"
}
start=$SECONDS
rc=0
echo "=== user-run: as $u (uid $(id -u "$u")), in $home/labctl"
as_user "id; make --no-print-directory build && ./bin/labctl doctor --fix" || rc=1
# What only a normal user meets: a build cut short leaves a tree owned by subordinate ids.
as_user "go test -count=1 -v -run 'TestRemoveAllInUserNS' ./lab/host/" >"$out/userns.log" 2>&1 || rc=1
grep -E -- '^(--- |ok|FAIL)' "$out/userns.log"
if [ $rc -eq 0 ]; then
  t=$SECONDS
  as_user "LABCTL_VM_TESTS=1 go test -tags vm -count=1 -timeout 30m -v -run TestVM ./lab/" >"$out/vm.log" 2>&1 || rc=1
  echo "user-run: vm test $( [ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t))s (tmp/user-run/vm.log)"
  # The verdicts; on a failure what the tests said (t.Log, t.Fatal with their continuation
  # lines), not vagrant's chatter.
  if [ $rc -eq 0 ]; then
    grep -E -- '^(--- |ok|FAIL)' "$out/vm.log"
  else
    awk '/^    [a-z_]+_test\.go:[0-9]+: /{keep=1; print; next} /^        /{if (keep) print; next} {keep=0} /^(--- |ok|FAIL|PASS)/' "$out/vm.log" | tail -n 200
  fi
fi
if [ $rc -eq 0 ]; then
  t=$SECONDS
  # The cell's lab is the run's own: clear what an interrupted earlier run may have left.
  as_user "[ ! -f tmp/matrix/cells/$cell/lab.yaml ] || ./bin/labctl destroy -f tmp/matrix/cells/$cell/lab.yaml >/dev/null 2>&1 || true"
  as_user "./bin/labctl matrix run --cells $cell" || rc=1
  echo "user-run: e2e on cell $cell $( [ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t))s"
  cp "$home/labctl/tmp/matrix/summary.md" "$out/summary.md" 2>/dev/null
  [ $rc -eq 0 ] || tail -n 150 "$home/labctl/tmp/matrix/cells/$cell/run.log"
fi
# The user's own libvirt daemon would leave by itself after two idle minutes: end it now, by
# its pid (it is this run's).
for pid in $(pgrep -u "$u" -x libvirtd) $(pgrep -u "$u" -x virtlogd); do
  kill "$pid" 2>/dev/null && echo "user-run: ended $u's $(cat /proc/"$pid"/comm 2>/dev/null || echo daemon) (pid $pid)"
done
echo "user-run: as $u in $((SECONDS - start))s"

# What the run wrote outside the user's areas. Two checks, each failing the run:
# - owned: every file on the root file system owned by the user or its subordinate ids outside
#   its home and this checkout's tmp/ (scratch it left in /tmp or /var/tmp included);
# - system: every file changed since the mark where a system daemon would write for it: the
#   system libvirt's directories and root's labctl cache.
# Everything else changed meanwhile is listed for the record (others.txt: root's own work,
# such as the harness's logs), not judged.
uid=$(id -u "$u")
gid=$(id -g "$u")
read -r _ s0 n0 < <(grep "^$u:" /etc/subuid | head -n 1 | tr ':' ' ')
read -r _ g0 m0 < <(grep "^$u:" /etc/subgid | head -n 1 | tr ':' ' ')
prune=(\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path "$home" -o -path "$PWD/tmp" \) -prune)
find / -xdev "${prune[@]}" -o \( -uid "$uid" -o -gid "$gid" -o \( -uid +$((s0 - 1)) -uid -$((s0 + n0)) \) \
  -o \( -gid +$((g0 - 1)) -gid -$((g0 + m0)) \) \) -print 2>/dev/null | sort >"$out/owned.txt"
sysdirs=(/etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /var/cache/labctl)
find "${sysdirs[@]}" -xdev \( -newer "$mark" -o -cnewer "$mark" \) -print 2>/dev/null | sort >"$out/system.txt"
find / -xdev "${prune[@]}" -o \( -newer "$mark" -o -cnewer "$mark" \) ! -type d -print 2>/dev/null | sort >"$out/others.txt"
cat "$out/owned.txt" "$out/system.txt" >"$out/files.txt"
n=$(grep -c . "$out/files.txt")
echo "user-run: outside $home and tmp/: $(grep -c . "$out/owned.txt") file(s) of $u or its subordinate ids, $(grep -c . "$out/system.txt") changed in ${sysdirs[*]} (tmp/user-run/files.txt); $(grep -c . "$out/others.txt") other file(s) changed meanwhile, not by $u (others.txt)"
if [ "$n" -gt 0 ]; then
  head -n 40 "$out/files.txt"
  rc=1
fi
exit $rc
