#!/usr/bin/env bash
# Run a command with Kafka, PostgreSQL and MariaDB up, then stop the ones this script
# started (servers that were already running are left running).
#
#   infra/with-infra.sh COMMAND [ARGS]...
#
# Exits with the command's status, or with infra's when the servers could not start.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=()
for part in kafka postgres mariadb; do
    bash "$here/infra.sh" status "$part" >/dev/null 2>&1 || started+=("$part")
done

stop_started() {
    if ((${#started[@]})); then
        bash "$here/infra.sh" down "${started[@]}" || echo "infra: could not stop ${started[*]}" >&2
    fi
}
trap stop_started EXIT

bash "$here/infra.sh" up || exit $?
"$@"
