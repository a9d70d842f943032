# PostgreSQL: the machine's Debian cluster (15/main by default), started and stopped with
# pg_ctlcluster, holding the stock, payment and orchestrator databases. Sourced by
# infra/infra.sh.

PG_VERSION=${PG_VERSION:-15}
PG_CLUSTER=${PG_CLUSTER:-main}
PG_PORT=5432
PG_DATABASES=(stock payment orchestrator)
# Command-line settings, so the machine's postgresql.conf stays untouched: loopback
# only, and room for several replicas of each service with their connection pools.
PG_OPTIONS=(-o "-c listen_addresses=$HOST" -o "-c max_connections=300")
# One login per service, owning nothing: `ordersaga db upgrade`, run as ordersaga (the
# owner), grants each its rows (docs/security.md).
PG_SERVICES=(orchestrator stock payment)
# The server's certificate for TLS with sslmode=verify-full, signed by a CA of its own:
# outside the checkout, where the postgres user can read it.
PG_TLS=/var/lib/postgresql/ordersaga-tls
# The service logins' passwords live beside the cluster, not in a checkout: every clone on
# the machine shares the cluster, so they share its passwords too (root alone reads them).
PG_SECRETS=/var/lib/postgresql/ordersaga-secrets

pg_log() {
    pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" \
        '$1 == v && $2 == c { print $7 }'
}

pg_running() {
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1
}

# psql as the postgres superuser over the local socket (peer authentication).
pg_admin() {
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@")
}

# pg_ctlcluster acts as the cluster's owner, and only root can become it.
pg_require_root() {
    ((EUID == 0)) || fail postgres "run as root: the cluster is started and set up as user postgres"
}

pg_ensure_cluster() {
    if ! command -v pg_ctlcluster >/dev/null || [[ ! -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]]; then
        say postgres "installing postgresql-$PG_VERSION"
        mkdir -p "$CACHE"
        { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$PG_VERSION"; } \
            >"$CACHE/postgres-apt.log" 2>&1 9>&- ||
            fail postgres "could not install postgresql-$PG_VERSION" "$CACHE/postgres-apt.log"
    fi
    if ! pg_lsclusters -h | awk '{ print $1 "/" $2 }' | grep -qx "$PG_VERSION/$PG_CLUSTER"; then
        say postgres "creating the cluster $PG_VERSION/$PG_CLUSTER"
        pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >/dev/null ||
            fail postgres "pg_createcluster $PG_VERSION $PG_CLUSTER failed"
    fi
}

# The ordersaga role and its databases, each created only when missing. The password is
# set every time, so a role left from elsewhere still matches the settings.
pg_provision() {
    pg_admin -d postgres <<'SQL' || fail postgres "could not create the ordersaga role" "$(pg_log)"
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ordersaga') THEN
        CREATE ROLE ordersaga LOGIN CREATEDB PASSWORD 'ordersaga';
    ELSE
        ALTER ROLE ordersaga LOGIN CREATEDB PASSWORD 'ordersaga';
    END IF;
END
$$;
-- The owner drops its databases WITH (FORCE), cutting off the service logins' sessions.
GRANT pg_signal_backend TO ordersaga;
SQL
    local db
    for db in "${PG_DATABASES[@]}"; do
        pg_admin -d postgres -v db="$db" <<'SQL' || fail postgres "could not create the database $db"
SELECT format('CREATE DATABASE %I OWNER ordersaga', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    done
    pg_provision_services
    pg_provision_tls
    # The services log in with a password over TCP; check exactly that.
    PGPASSWORD=ordersaga PGCONNECT_TIMEOUT=5 psql -X -q -h "$HOST" -p "$PG_PORT" -U ordersaga \
        -d stock -tAc 'select 1' >/dev/null 2>&1 ||
        fail postgres "ordersaga cannot log in with its password over TCP (check pg_hba.conf for 127.0.0.1/32 scram-sha-256 or md5)" "$(pg_log)"
}

# ordersaga_<service>: LOGIN and nothing else; its password from its file, set again
# every time so the file and the role always agree. Sent on stdin, never on a command line.
pg_provision_services() {
    local service password
    for service in "${PG_SERVICES[@]}"; do
        password=$(<"$(secret_file "db-$service" "$PG_SECRETS")")
        {
            printf '\\set password %s\n' "$password"
            cat <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'password') \gexec
SQL
        } | pg_admin -d postgres -v role="ordersaga_$service" ||
            fail postgres "could not create the login ordersaga_$service" "$(pg_log)"
    done
}

# The cluster presents our certificate (it is reloaded, not restarted): ssl_cert_file and
# ssl_key_file are set with ALTER SYSTEM, the cluster's one persistent change.
pg_provision_tls() {
    make_server_certificate "$PG_TLS" 127.0.0.1
    chown postgres:postgres "$PG_TLS" "$PG_TLS/server.key" "$PG_TLS/server.crt"
    chmod 755 "$PG_TLS"
    pg_admin -d postgres -o /dev/null -v cert="$PG_TLS/server.crt" -v key="$PG_TLS/server.key" <<'SQL' ||
SELECT format('ALTER SYSTEM SET ssl_cert_file = %L', :'cert')
WHERE current_setting('ssl_cert_file') <> :'cert' \gexec
SELECT format('ALTER SYSTEM SET ssl_key_file = %L', :'key')
WHERE current_setting('ssl_key_file') <> :'key' \gexec
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
SQL
        fail postgres "could not turn TLS on with $PG_TLS/server.crt" "$(pg_log)"
}

postgres_up() {
    pg_require_root
    pg_ensure_cluster
    if pg_running; then
        wait_ready postgres 60 "" pg_isready -q -h "$HOST" -p "$PG_PORT" ||
            fail postgres "the cluster runs but does not accept connections on $HOST:$PG_PORT" "$(pg_log)"
        pg_provision
        say postgres "already running on $HOST:$PG_PORT (cluster $PG_VERSION/$PG_CLUSTER)"
        return 0
    fi
    require_free_ports postgres "$PG_PORT"
    say postgres "starting cluster $PG_VERSION/$PG_CLUSTER on $HOST:$PG_PORT"
    # 9>&-: the server must not inherit the lock of infra.sh (see spawn in lib.sh).
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start "${PG_OPTIONS[@]}" 9>&- ||
        fail postgres "pg_ctlcluster start failed" "$(pg_log)"
    wait_ready postgres 60 "" pg_isready -q -h "$HOST" -p "$PG_PORT" ||
        fail postgres "not accepting connections on $HOST:$PG_PORT" "$(pg_log)"
    pg_provision
    say postgres "ready on $HOST:$PG_PORT"
}

postgres_down() {
    if ! command -v pg_ctlcluster >/dev/null || ! pg_running; then
        say postgres "not running"
        return 0
    fi
    pg_require_root
    say postgres "stopping cluster $PG_VERSION/$PG_CLUSTER"
    # pg_ctlcluster waits until the server is gone.
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" stop -m fast ||
        fail postgres "pg_ctlcluster stop failed" "$(pg_log)"
    say postgres "stopped"
}

postgres_status() {
    if command -v pg_ctlcluster >/dev/null && pg_running && pg_isready -q -h "$HOST" -p "$PG_PORT"; then
        say postgres "running  $HOST:$PG_PORT (cluster $PG_VERSION/$PG_CLUSTER; log $(pg_log))"
    else
        say postgres "stopped  $HOST:$PG_PORT"
        return 1
    fi
}
