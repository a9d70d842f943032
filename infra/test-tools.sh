#!/usr/bin/env bash
# The Debian packages the tests drive beside the servers, installed with apt-get (one call)
# when missing; does nothing when they are all there:
#   chromium  the console's browser tests, through Playwright (executable_path
#             /usr/bin/chromium; Playwright's own browsers are never downloaded)
#   podman    what podman-compose (a test extra) runs to read deploy/compose/compose.yaml
#
#   infra/test-tools.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CURRENT_PART=test-tools
trap report_unexpected_exit EXIT

TOOLS=(/usr/bin/chromium /usr/bin/podman)

missing=()
for tool in "${TOOLS[@]}"; do
    [[ -x $tool ]] || missing+=("$(basename "$tool")")
done
((${#missing[@]})) || exit 0
say test-tools "installing ${missing[*]} with apt-get (the tests drive them)"
mkdir -p "$CACHE"
{
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
} >"$CACHE/test-tools-apt.log" 2>&1 ||
    fail test-tools "could not install ${missing[*]}" "$CACHE/test-tools-apt.log"
for tool in "${TOOLS[@]}"; do
    [[ -x $tool ]] || fail test-tools "apt-get ran, but $tool is not there" "$CACHE/test-tools-apt.log"
done
