#!/bin/bash
# faults.sh runs the fault tests that need no VM (every test named TestFault..., in every
# package: go test -run Fault ./...) and prints one table: bad inputs tried / rejected cleanly,
# faults injected / survived, anything lost (must be 0). It fails when anything was lost, a
# fault test failed, or none ran. `make test-faults` runs it; scripts/test.sh runs it after
# the unit phase.
#
# A fault test counts itself with one line, logged (t.Log) when it ends:
#   FAULT kind=input result=rejected name=NAME    a bad input, refused with a clear error that
#                                                 names it, and nothing changed
#   FAULT kind=fault result=survived name=NAME    a fault injected (a signal, a race, a damaged
#                                                 cache, a failed probe) and nothing lost
#   FAULT kind=input|fault result=lost name=NAME  the test failed: its protection did not hold
#   FAULT kind=input|fault result=skipped name=NAME  it could not run on this host
# NAME is one word (a-z, 0-9, -). lab/faulttest.Count(t, kind, name) logs the line with the
# result the test came to.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LABCTL_LONG_FAULTS=1 go test -count=1 -run Fault -v ./... >"$out" 2>&1
rc=$?
awk -v rc="$rc" '
  /FAULT kind=/ {
    kind = ""; result = ""; name = ""
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^kind=/) kind = substr($i, 6)
      if ($i ~ /^result=/) result = substr($i, 8)
      if ($i ~ /^name=/) name = substr($i, 6)
    }
    tried[kind]++; got[kind "/" result]++
    if (result == "lost") lostnames = lostnames "    " kind " " name "\n"
    if (result == "skipped") skipnames = skipnames "    " kind " " name "\n"
  }
  /^--- PASS: TestFault/ { passed++ }
  /^--- FAIL: TestFault/ { failed++; failnames = failnames "    " $3 "\n" }
  /^(FAIL|ok)[ \t]+github/ && $1 == "FAIL" { buildfail = buildfail "    " $0 "\n" }
  END {
    lost = got["input/lost"] + got["fault/lost"]
    skipped = got["input/skipped"] + got["fault/skipped"]
    printf "=== fault table (go test -run Fault ./...)\n"
    printf "  bad inputs tried    %3d   rejected cleanly %3d\n", tried["input"], got["input/rejected"]
    printf "  faults injected     %3d   survived         %3d\n", tried["fault"], got["fault/survived"]
    printf "  lost                %3d   (must be 0)\n", lost
    if (skipped) printf "  skipped             %3d\n%s", skipped, skipnames
    printf "  fault tests         %3d passed, %d failed\n", passed, failed
    if (lost) printf "  lost:\n%s", lostnames
    if (failed) printf "  failed:\n%s", failnames
    if (buildfail) printf "  packages that failed:\n%s", buildfail
    bad = lost || failed || rc != 0 || tried["input"] + tried["fault"] == 0
    exit bad ? 1 : 0
  }' "$out"
status=$?
if [ $status -ne 0 ]; then
  echo "=== fault tests failed: their output"
  grep -vE '^(=== (RUN|PAUSE|CONT)|ok |\?)' "$out" | tail -n 80
fi
exit $status
