# MariaDB with a data directory of its own under .cache/mariadb (the machine's MariaDB, if
# any, is left alone), holding the orders database. Sourced by infra/infra.sh.

MARIADB_PORT=3306
MARIADB_DIR="$CACHE/mariadb"
MARIADB_DATA="$MARIADB_DIR/data"
MARIADB_SOCKET="$MARIADB_DIR/mariadb.sock"
MARIADB_PID="$MARIADB_DIR/mariadb.pid"
MARIADB_LOG="$MARIADB_DIR/mariadb.log"
MARIADB_CONFIG="$INFRA/mariadb/my.cnf"

mariadb_pid() {
    local pid
    for pid in "$(cat "$MARIADB_PID" 2>/dev/null || true)" "$(port_owner "$MARIADB_PORT")"; do
        if pid_matches "$pid" mariadbd "$MARIADB_DATA"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# The root account authenticates by unix socket: root on this machine, nobody else.
mariadb_root() {
    mariadb --no-defaults --socket="$MARIADB_SOCKET" -u root "$@"
}

# Over the socket: a TCP ping from an account that does not exist yet counts as a failure
# (and floods the log), so TCP is checked by logging in as ordersaga once provisioned.
mariadb_ping() {
    mariadb-admin --no-defaults --socket="$MARIADB_SOCKET" -u root --connect-timeout=2 ping
}

mariadb_install() {
    command -v mariadbd >/dev/null && return 0
    say mariadb "installing mariadb-server"
    mkdir -p "$MARIADB_DIR"
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server
    } >"$MARIADB_DIR/apt.log" 2>&1 9>&- ||
        fail mariadb "could not install mariadb-server" "$MARIADB_DIR/apt.log"
}

# Initialised in a scratch directory and moved into place, so an interrupted run never
# leaves a half-made data directory that looks finished.
mariadb_init() {
    [[ -d $MARIADB_DATA ]] && return 0
    say mariadb "initialising ${MARIADB_DATA#"$ROOT"/}"
    rm -rf "$MARIADB_DATA.new"
    mariadb-install-db --no-defaults --datadir="$MARIADB_DATA.new" --user=root \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$MARIADB_DIR/install.log" 2>&1 ||
        fail mariadb "mariadb-install-db failed" "$MARIADB_DIR/install.log"
    mv "$MARIADB_DATA.new" "$MARIADB_DATA"
}

# The orders database and the ordersaga accounts. Scratch databases named orders_test*
# may be created and dropped by ordersaga, for the tests.
mariadb_provision() {
    mariadb_root <<'SQL' || fail mariadb "could not create the orders database or the ordersaga user" "$MARIADB_LOG"
CREATE DATABASE IF NOT EXISTS orders CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'ordersaga'@'127.0.0.1' IDENTIFIED BY 'ordersaga';
CREATE USER IF NOT EXISTS 'ordersaga'@'localhost' IDENTIFIED BY 'ordersaga';
ALTER USER 'ordersaga'@'127.0.0.1' IDENTIFIED BY 'ordersaga';
ALTER USER 'ordersaga'@'localhost' IDENTIFIED BY 'ordersaga';
GRANT ALL PRIVILEGES ON `orders`.* TO 'ordersaga'@'127.0.0.1', 'ordersaga'@'localhost';
GRANT ALL PRIVILEGES ON `orders\_test%`.* TO 'ordersaga'@'127.0.0.1', 'ordersaga'@'localhost';
SQL
    mariadb_provision_service
    mariadb --no-defaults --protocol=tcp -h "$HOST" -P "$MARIADB_PORT" -u ordersaga \
        -pordersaga orders -e 'select 1' >/dev/null 2>&1 ||
        fail mariadb "ordersaga cannot log in over TCP" "$MARIADB_LOG"
}

# ordersaga_order, the order service's login: rows of the orders databases and nothing
# else (no DDL, no other database); its password from its file, on stdin.
mariadb_provision_service() {
    local password user
    password=$(<"$(secret_file db-order)")
    {
        for user in "'ordersaga_order'@'127.0.0.1'" "'ordersaga_order'@'localhost'"; do
            printf "CREATE USER IF NOT EXISTS %s IDENTIFIED BY '%s';\n" "$user" "$password"
            printf "ALTER USER %s IDENTIFIED BY '%s';\n" "$user" "$password"
            printf 'GRANT SELECT, INSERT, UPDATE, DELETE ON `orders`.* TO %s;\n' "$user"
            printf 'GRANT SELECT, INSERT, UPDATE, DELETE ON `orders\\_test%%`.* TO %s;\n' "$user"
        done
    } | mariadb_root || fail mariadb "could not create the login ordersaga_order" "$MARIADB_LOG"
}

mariadb_up() {
    mariadb_install
    mkdir -p "$MARIADB_DIR"
    local pid
    if pid=$(mariadb_pid); then
        wait_ready mariadb 60 "$pid" mariadb_ping ||
            fail mariadb "running (pid $pid) but not answering on $HOST:$MARIADB_PORT" "$MARIADB_LOG"
        mariadb_provision
        say mariadb "already running on $HOST:$MARIADB_PORT (pid $pid)"
        return 0
    fi
    require_free_ports mariadb "$MARIADB_PORT"
    mariadb_init
    say mariadb "starting on $HOST:$MARIADB_PORT"
    rm -f "$MARIADB_SOCKET"
    # Run as root (the owner of the data directory) rather than as mysql, which may not
    # be allowed into the checkout.
    pid=$(spawn "$MARIADB_LOG" mariadbd --defaults-file="$MARIADB_CONFIG" \
        --datadir="$MARIADB_DATA" --socket="$MARIADB_SOCKET" --pid-file="$MARIADB_PID" \
        --log-error="$MARIADB_LOG" --user=root)
    local started=$SECONDS status=0
    wait_ready mariadb 120 "$pid" mariadb_ping || status=$?
    case $status in
        0) ;;
        2) fail mariadb "the server exited while starting" "$MARIADB_LOG" ;;
        *) fail mariadb "not ready after $((SECONDS - started))s (pid $pid still running)" "$MARIADB_LOG" ;;
    esac
    mariadb_provision
    say mariadb "ready on $HOST:$MARIADB_PORT (pid $pid, $((SECONDS - started))s)"
}

mariadb_down() {
    local pid
    if ! pid=$(mariadb_pid); then
        say mariadb "not running"
        return 0
    fi
    say mariadb "stopping (pid $pid)"
    stop_pid mariadb "$pid" 60
    rm -f "$MARIADB_PID"
    say mariadb "stopped"
}

mariadb_status() {
    local pid
    if pid=$(mariadb_pid) && mariadb_ping >/dev/null 2>&1; then
        say mariadb "running  $HOST:$MARIADB_PORT (pid $pid; data and log in ${MARIADB_DIR#"$ROOT"/})"
    else
        say mariadb "stopped  $HOST:$MARIADB_PORT"
        return 1
    fi
}
