#!/usr/bin/env bash
# Start, stop or show the servers the distributed mode runs on: Kafka (KRaft, single node),
# PostgreSQL, MariaDB and the Prometheus that scrapes the services, all on 127.0.0.1; and,
# when named, `kafka3`: a three-node Kafka cluster with replication factor 3. Idempotent:
# `up` leaves running servers alone and starts the others; `down` stops them and waits
# until they are gone.
#
#   infra/infra.sh up|down|status [kafka|postgres|mariadb|prometheus|kafka3]...
#   infra/infra.sh env     the settings of the services' own logins (Kafka's and the
#                          databases'), as export lines
#
# With no part named, all but kafka3. `status` exits 3 when any part is stopped.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$INFRA/secrets.sh"
source "$INFRA/kafka-security.sh"
source "$INFRA/kafka.sh"
source "$INFRA/kafka3.sh"
source "$INFRA/postgres.sh"
source "$INFRA/mariadb.sh"
source "$INFRA/prometheus.sh"

PARTS=(kafka postgres mariadb prometheus)
# Started only when named: the three-node Kafka cluster of the replication tests.
OPTIONAL_PARTS=(kafka3)

# The settings that run the services with least privilege on these servers: Kafka's
# SASL_SSL listener, each service as its own SCRAM user (the commands as `admin`), each
# with its own database login (passwords in files), migrations as the owner. Printed as
# `export` lines for `eval "$(infra/infra.sh env)"`; with-infra.sh (make test) does that.
print_env() {
    local service
    kafka_print_env
    printf 'export ORDERSAGA_ORDER_DB_URL=%q\n' "mysql+aiomysql://ordersaga_order@$HOST:$MARIADB_PORT/orders"
    printf 'export ORDERSAGA_ORDER_DB_OWNER_URL=%q\n' "mysql+aiomysql://ordersaga:ordersaga@$HOST:$MARIADB_PORT/orders"
    printf 'export ORDERSAGA_ORDER_DB_PASSWORD_FILE=%q\n' "$(secret_file db-order)"
    for service in "${PG_SERVICES[@]}"; do
        printf 'export ORDERSAGA_%s_DB_URL=%q\n' "${service^^}" \
            "postgresql+asyncpg://ordersaga_$service@$HOST:$PG_PORT/$service?ssl=disable"
        printf 'export ORDERSAGA_%s_DB_OWNER_URL=%q\n' "${service^^}" \
            "postgresql+asyncpg://ordersaga:ordersaga@$HOST:$PG_PORT/$service?ssl=disable"
        printf 'export ORDERSAGA_%s_DB_PASSWORD_FILE=%q\n' "${service^^}" "$(secret_file "db-$service" "$PG_SECRETS")"
    done
    printf 'export ORDERSAGA_INFRA_POSTGRES_CA=%q\n' "$PG_TLS/ca.crt"
}

usage() {
    local IFS='|'
    REPORTED=1
    echo "usage: $0 up|down|status [${PARTS[*]}|${OPTIONAL_PARTS[*]}]... | $0 env" >&2
    exit 2
}

main() {
    (($# >= 1)) || usage
    local action=$1 part
    shift
    if [[ $action == env ]]; then
        REPORTED=1
        print_env
        return 0
    fi
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
    if [[ $action == up ]]; then
        up_together "${parts[@]}"
        return 0
    fi
    for part in "${parts[@]}"; do
        CURRENT_PART=$part
        "${part}_${action}"
    done
}

# Start the parts: the Kafka ones (each mostly waiting for its JVMs and its brokers) in the
# background, the others one after another meanwhile (they may install packages with
# apt-get, one at a time). What the Kafka parts share -- the jars, the certificates, the
# passwords -- is made first, once.
up_together() { # part...
    local part failed=()
    local -A background=()
    if [[ " $* " == *" kafka"* ]]; then
        CURRENT_PART=kafka
        kafka_libs
        kafka_security_files
    fi
    for part in "$@"; do
        [[ $part == kafka || $part == kafka3 ]] || continue
        (
            CURRENT_PART=$part
            trap report_unexpected_exit EXIT
            "${part}_up"
        ) &
        background[$part]=$!
    done
    for part in "$@"; do
        [[ -v "background[$part]" ]] && continue
        CURRENT_PART=$part
        "${part}_up"
    done
    for part in "${!background[@]}"; do
        wait "${background[$part]}" || failed+=("$part")
    done
    if ((${#failed[@]})); then
        REPORTED=1
        exit 1
    fi
}

trap report_unexpected_exit EXIT
main "$@"
