#!/bin/bash
# test.sh runs every test of labctl, fast feedback first, and prints each phase's duration:
#   1. unit + integration (real sshd on 127.0.0.1): go test ./...
#   2. a real VM: box build (cached), vagrant up, pinned SSH, blank SATA data disk, destroy
#   3. the e2e suite: the suite brings the lab up, proves every level, re-provisions (0
#      changed), then destroys the lab
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
phase build go build -o "$bin" ./cmd/labctl || exit 1
phase unit go test -count=1 ./... || { echo "fast tests failed: not booting VMs"; exit 1; }
phase vm env LABCTL_VM_TESTS=1 go test -tags vm -count=1 -timeout 30m -v -run TestVM ./lab/
# The e2e lab is the test's own: clear what an interrupted earlier run may have left.
"$bin" destroy --preset "$preset" >/dev/null 2>&1 || true
phase e2e go tool ginkgo -v --timeout 60m ./e2e -- -preset "$preset" -up -labctl "$bin"
report=tmp/$preset/reports/report.json
if [ -f "$report" ]; then
  python3 - "$report" <<'PY' || true
import json, sys
specs = [s for r in json.load(open(sys.argv[1])) for s in r.get("SpecReports") or [] if s.get("LeafNodeType") == "It"]
count = lambda st: sum(1 for s in specs if s["State"] == st)
print("e2e: %d passed, %d failed, %d skipped" % (count("passed"), count("failed") + count("panicked") + count("timedout"), count("skipped")))
PY
fi
echo "=== durations"
printf '%s\n' "${summary[@]}"
exit $failed
