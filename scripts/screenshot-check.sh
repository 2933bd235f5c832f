#!/bin/bash
# screenshot-check.sh renders the matrix summary of a fixture with green and red cells in
# Debian's headless chromium (installed here when missing; in a network namespace of its own,
# so it reaches nothing) and checks the screenshot (lab/matrix TestSummaryScreenshot). The
# picture stays in tmp/screenshot/summary.png. Run by `make test` as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "screenshot: chromium is missing: run as root (it is installed with apt-get install chromium)" >&2
    exit 1
  fi
  echo "screenshot: installing chromium (the test's browser; not a labctl dependency)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium >/dev/null || {
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
fi
LABCTL_SCREENSHOT=1 go test -count=1 -run TestSummaryScreenshot -v ./lab/matrix
echo "screenshot: look at tmp/screenshot/summary.png"
