#!/usr/bin/env bash
# Run a command with Kafka, PostgreSQL, MariaDB and Prometheus up (and, with --cluster, the
# three-node Kafka cluster kafka3 too), then stop the ones this script started (servers
# that were already running are left running).
#
#   infra/with-infra.sh [--cluster] COMMAND [ARGS]...
#
# `make test-cluster` passes --cluster: tests/realstack/test_cluster.py runs on kafka3
# (and starts it itself when it is not running), every other suite on the single node.
#
# Exits with the command's status, or with infra's when the servers could not start.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
parts=(kafka postgres mariadb prometheus)
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
# Every service logs in with its own database login, as a deployment should.
eval "$(bash "$here/infra.sh" env)"
# The tests drive Debian's chromium and podman: installed when missing.
bash "$here/test-tools.sh" || exit $?
"$@"
