#!/usr/bin/env bash
# Run a command with Kafka, PostgreSQL and MariaDB up (and, with --cluster, the
# three-node Kafka cluster kafka3 too), then stop the ones this script started (servers
# that were already running are left running).
#
#   infra/with-infra.sh [--cluster] COMMAND [ARGS]...
#
# `make test` passes --cluster: tests/realstack/test_cluster.py runs on kafka3, every other
# suite on the single node. `make bench` does not.
#
# Exits with the command's status, or with infra's when the servers could not start.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
parts=(kafka postgres mariadb)
if [[ ${1:-} == --cluster ]]; then
    parts+=(kafka3)
    shift
fi
started=()
for part in "${parts[@]}"; do
    bash "$here/infra.sh" status "$part" >/dev/null 2>&1 || started+=("$part")
done

stop_started() {
    if ((${#started[@]})); then
        bash "$here/infra.sh" down "${started[@]}" || echo "infra: could not stop ${started[*]}" >&2
    fi
}
trap stop_started EXIT

bash "$here/infra.sh" up "${parts[@]}" || exit $?
# The console's browser tests drive Debian's chromium: installed when missing.
bash "$here/chromium.sh" || exit $?
"$@"
