#!/bin/bash
# test.sh runs every test of labctl, fast feedback first, and prints each phase's duration:
#   1. lint: go vet and staticcheck
#   2. unit + integration (real sshd on 127.0.0.1): go test ./...
#   3. faults: the fault tests that need no VM, as one table (scripts/faults.sh): bad inputs
#      rejected, faults survived, anything lost (must be 0)
#   4. as root: the Debian package (make deb) installed into a clean Debian 12 chroot, its
#      dependencies resolved by apt, and labctl version, render, test --help, doctor run there
#      (scripts/deb-test.sh); and the matrix summary of a fixture rendered in headless chromium,
#      its screenshot checked for its green and red cells (scripts/screenshot-check.sh)
#   5. a real VM: box build (cached), vagrant up, pinned SSH, blank SATA data disk, kept
#      console, two timed-out boots of the halted VM (kept), destroy; two timed-out boots of a
#      new VM; and `vagrant validate` on both providers (it starts libvirtd)
#   6. the e2e suite on the matrix cells of PRESET and forky (the newest kernel and LXC), with
#      `labctl matrix run`: each cell's lab comes up, the suite proves every level and
#      re-provisions (0 changed), the lab is destroyed; reports in tmp/matrix/ (summary.md,
#      junit.xml, cells/<cell>/run.log). LABCTL_CELLS=a,b runs other cells.
#   7. a short seeded chaos soak (scripts/chaos, make test-chaos) on a lab of its own: 10 rounds
#      of an everyday verb with one fault each; after each, up converges, provision changes
#      nothing, the canaries in the VM, box1 and n1 are there, nothing is left behind. The seed
#      is the day's date (LABCTL_CHAOS_SEED; LABCTL_CHAOS_ROUNDS), printed to replay a round;
#      the verbs that boot or make a lab by themselves (halt-up, destroy-up, matrix) are left to
#      make test-chaos (LABCTL_CHAOS_VERBS), every fault stays; no round starts after 10 minutes.
#   8. as root: the VM test and a cross cell of the grid (LABCTL_USER_CELL, default
#      k5-10-lxc7-0-0: LXC 7.0 on kernel 5.10, a pair no release makes) as a normal user, on
#      that user's own libvirt daemon, checking that nothing outside its home was written
#      (scripts/user-run.sh; reports in tmp/user-run/). LABCTL_USER_RUN=0 leaves it out.
# Usage: scripts/test.sh [PRESET]
set -uo pipefail
preset=${1:-bookworm}
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
bin=$PWD/bin/labctl
declare -a summary
failed=0
phase() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== phase $name: $*"
  "$@"
  local rc=$?
  local took=$((SECONDS - start))
  summary+=("$(printf '%-10s %4ds  %s' "$name" "$took" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")")")
  echo "=== phase $name: $([ $rc -eq 0 ] && echo ok || echo FAILED) in ${took}s"
  [ $rc -eq 0 ] || failed=1
  return $rc
}
phase build make --no-print-directory build || exit 1
phase lint make --no-print-directory lint || { echo "lint failed: not booting VMs"; exit 1; }
phase unit go test -count=1 ./... || { echo "fast tests failed: not booting VMs"; exit 1; }
phase faults ./scripts/faults.sh || { echo "fault tests failed: not booting VMs"; exit 1; }
if [ "$(id -u)" -eq 0 ]; then
  phase deb ./scripts/deb-test.sh
  phase screenshot ./scripts/screenshot-check.sh
fi
phase vm env LABCTL_VM_TESTS=1 go test -tags vm -count=1 -timeout 30m -v -run TestVM ./lab/
cells=${LABCTL_CELLS:-$preset,forky}
[ "$preset" != forky ] || cells=${LABCTL_CELLS:-forky}
# The cells' labs are the test's own: clear what an interrupted earlier run may have left.
for c in ${cells//,/ }; do
  [ -f "tmp/matrix/cells/$c/lab.yaml" ] && "$bin" destroy -f "tmp/matrix/cells/$c/lab.yaml" >/dev/null 2>&1 || true
done
if ! phase e2e "$bin" matrix run --cells "$cells"; then
  for c in ${cells//,/ }; do
    if grep -q '"status": "failed"' "tmp/matrix/cells/$c/result.json" 2>/dev/null; then
      echo "=== the end of cell $c's log (tmp/matrix/cells/$c/run.log)"
      tail -n 150 "tmp/matrix/cells/$c/run.log"
    fi
  done
fi
phase chaos go run ./scripts/chaos -seed "${LABCTL_CHAOS_SEED:-$(date +%Y%m%d)}" -rounds "${LABCTL_CHAOS_ROUNDS:-10}" -budget 10m \
  -verbs "${LABCTL_CHAOS_VERBS:-exec,provision,up,status,snapshot,reset}" -preset "$preset" -labctl "$bin"
if [ "$(id -u)" -eq 0 ] && [ "${LABCTL_USER_RUN:-1}" != 0 ]; then
  phase user ./scripts/user-run.sh "${LABCTL_USER_CELL:-k5-10-lxc7-0-0}"
fi
echo "=== durations"
printf '%s\n' "${summary[@]}"
exit $failed
