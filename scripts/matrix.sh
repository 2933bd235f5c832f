#!/bin/bash
# matrix.sh runs the e2e suite against each Debian preset (a kernel/LXC cell) in turn: the
# suite brings the cell's lab up, proves every level, re-provisions, and destroys it. It prints
# one line per cell: kernel, LXC, result, passed/failed specs and duration.
# Usage: scripts/matrix.sh [PRESET...]   (default: bullseye bookworm trixie)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(bullseye bookworm trixie)
bin=$PWD/bin/labctl
go build -o "$bin" ./cmd/labctl || exit 1
declare -a rows
failed=0
for p in "${presets[@]}"; do
  start=$SECONDS
  "$bin" destroy --preset "$p" >/dev/null 2>&1 || true
  go tool ginkgo --timeout 60m ./e2e -- -preset "$p" -up -labctl "$bin" > "tmp/matrix-$p.log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  counts=$(python3 - "tmp/$p/reports/report.json" <<'PY' 2>/dev/null || echo "no report"
import json, sys
r = json.load(open(sys.argv[1]))[0]
specs = [s for s in r.get("SpecReports") or [] if s.get("LeafNodeType") == "It"]
n = lambda st: sum(1 for s in specs if s["State"] == st)
env = [e.get("Value", {}).get("Representation", "") for s in r.get("SpecReports") or [] for e in s.get("ReportEntries") or [] if e.get("Name") == "facts"]
print("%d passed, %d failed, %d skipped  %s" % (n("passed"), n("failed") + n("panicked") + n("timedout"), n("skipped"), env[0] if env else ""))
PY
)
  rows+=("$(printf '%-9s %-6s %5ds  %s' "$p" "$([ $rc -eq 0 ] && echo PASS || echo FAIL)" "$took" "$counts")")
  [ $rc -eq 0 ] || failed=1
done
echo "=== matrix (logs: tmp/matrix-<preset>.log, reports: tmp/<preset>/reports/)"
printf '%s\n' "${rows[@]}"
exit $failed
