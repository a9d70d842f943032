#!/usr/bin/env bash
# Start, stop or show the servers the distributed mode runs on: Kafka (KRaft, single node),
# PostgreSQL and MariaDB, all on 127.0.0.1; and, when named, `kafka3`: a three-node Kafka
# cluster with replication factor 3. Idempotent: `up` leaves running servers alone
# and starts the others; `down` stops them and waits until they are gone.
#
#   infra/infra.sh up|down|status [kafka|postgres|mariadb]...
#
# With no part named, all three. `status` exits 3 when any part is stopped.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$INFRA/kafka-security.sh"
source "$INFRA/kafka.sh"
source "$INFRA/kafka3.sh"
source "$INFRA/postgres.sh"
source "$INFRA/mariadb.sh"

PARTS=(kafka postgres mariadb)
# Started only when named: the three-node Kafka cluster of the replication tests.
OPTIONAL_PARTS=(kafka3)

usage() {
    local IFS='|'
    REPORTED=1
    echo "usage: $0 up|down|status [${PARTS[*]}|${OPTIONAL_PARTS[*]}]..." >&2
    exit 2
}

main() {
    (($# >= 1)) || usage
    local action=$1 part
    shift
    [[ $action =~ ^(up|down|status)$ ]] || usage
    local parts=("$@")
    ((${#parts[@]})) || parts=("${PARTS[@]}")
    for part in "${parts[@]}"; do
        [[ " ${PARTS[*]} ${OPTIONAL_PARTS[*]} " == *" $part "* ]] || usage
    done
    # Relative paths in the server configurations (Kafka's log.dirs) are from here.
    cd "$ROOT"
    mkdir -p "$CACHE"
    if [[ $action == status ]]; then
        local stopped=0
        for part in "${parts[@]}"; do
            "${part}_status" || stopped=1
        done
        REPORTED=1
        return $((stopped * 3))
    fi
    # One `up` or `down` at a time, so two concurrent runs never start a server twice.
    exec 9>"$CACHE/infra.lock"
    if ! flock -n 9; then
        say infra "waiting for another infra/infra.sh to finish"
        flock -w 600 9 || fail infra "another infra/infra.sh has held $CACHE/infra.lock for 10 minutes"
    fi
    for part in "${parts[@]}"; do
        CURRENT_PART=$part
        "${part}_${action}"
    done
}

trap report_unexpected_exit EXIT
main "$@"
