#!/bin/bash
# matrix.sh runs the e2e suite against each preset labctl can boot here (a kernel/LXC cell)
# in turn: the suite brings the cell's lab up, proves every level, re-provisions, and destroys
# it. It prints one line per cell: result, duration, the suite's counts and the guest's facts.
# Usage: scripts/matrix.sh [PRESET...]   (default: every preset named after the release it boots)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
bin=$PWD/bin/labctl
CGO_ENABLED=0 go build -ldflags="-s -w" -o "$bin" ./cmd/labctl || exit 1
presets=("$@")
# By default every preset named after the release it boots (one per kernel/LXC cell).
[ ${#presets[@]} -gt 0 ] || mapfile -t presets < <("$bin" presets | awk 'NR > 1 && $3 == "libvirt" && $2 == "labctl/" $1 {print $1}')
declare -a rows
failed=0
mkdir -p tmp
for p in "${presets[@]}"; do
  start=$SECONDS
  "$bin" destroy --preset "$p" >/dev/null 2>&1 || true
  go tool ginkgo --timeout 60m ./e2e -- -preset "$p" -up -labctl "$bin" > "tmp/matrix-$p.log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  # The suite's own closing lines: its counts and the facts of the guest it proved.
  counts=$(grep -a '^e2e: ' "tmp/matrix-$p.log" | tail -n 1 | cut -d' ' -f2-)
  facts=$(grep -a '^e2e facts: ' "tmp/matrix-$p.log" | tail -n 1 | cut -d' ' -f3-)
  rows+=("$(printf '%-9s %-6s %5ds  %s  %s' "$p" "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" "$took" "${counts:-no count (see the log)}" "$facts")")
  [ $rc -eq 0 ] || failed=1
done
echo "=== matrix (logs: tmp/matrix-<preset>.log, reports: tmp/<preset>/reports/)"
printf '%s\n' "${rows[@]}"
exit $failed
