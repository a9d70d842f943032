#!/usr/bin/env bash
# Debian's chromium, which the console's browser tests drive through Playwright
# (executable_path /usr/bin/chromium; Playwright's own browsers are never downloaded).
# Installs it with apt-get when it is missing; does nothing when it is there.
#
#   infra/chromium.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CURRENT_PART=chromium
trap report_unexpected_exit EXIT

CHROMIUM=/usr/bin/chromium

[[ -x $CHROMIUM ]] && exit 0
say chromium "installing chromium (for the console's browser tests)"
mkdir -p "$CACHE"
{
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
} >"$CACHE/chromium-apt.log" 2>&1 ||
    fail chromium "could not install chromium" "$CACHE/chromium-apt.log"
[[ -x $CHROMIUM ]] || fail chromium "apt-get installed chromium, but $CHROMIUM is not there"
