# Prometheus (Debian's `prometheus` package) run as a process of our own, not as the
# package's system service: on 127.0.0.1:9090, data under .cache/prometheus, scraping
# what `ordersaga up` serves with the shipped configuration (deploy/prometheus), the alert
# rules loaded. Sourced by infra/infra.sh.

PROMETHEUS_PORT=9090
PROMETHEUS_DIR="$CACHE/prometheus"
PROMETHEUS_DATA="$PROMETHEUS_DIR/data"
PROMETHEUS_PID="$PROMETHEUS_DIR/prometheus.pid"
PROMETHEUS_LOG="$PROMETHEUS_DIR/prometheus.log"
# Another configuration (one pointing at other ports, say): PROMETHEUS_CONFIG=path.
PROMETHEUS_CONFIG=${PROMETHEUS_CONFIG:-$ROOT/deploy/prometheus/prometheus.yml}

prometheus_pid() {
    local pid
    for pid in "$(cat "$PROMETHEUS_PID" 2>/dev/null || true)" "$(port_owner "$PROMETHEUS_PORT")"; do
        if pid_matches "$pid" prometheus "$PROMETHEUS_DATA"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

prometheus_ready() {
    curl -fsS --max-time 2 "http://$HOST:$PROMETHEUS_PORT/-/ready"
}

# Without the recommended packages: prometheus-node-exporter would take port 9100, the
# first metrics port of the services. On a machine booted with systemd the package
# starts its own service on every address; it is stopped and disabled, as it is not ours.
prometheus_install() {
    command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
    say prometheus "installing prometheus"
    mkdir -p "$PROMETHEUS_DIR"
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
    } >"$PROMETHEUS_DIR/apt.log" 2>&1 9>&- ||
        fail prometheus "could not install prometheus" "$PROMETHEUS_DIR/apt.log"
    if [[ -d /run/systemd/system ]] && systemctl is-active --quiet prometheus 2>/dev/null; then
        say prometheus "stopping and disabling the package's own prometheus.service"
        systemctl disable --now prometheus >>"$PROMETHEUS_DIR/apt.log" 2>&1 ||
            fail prometheus "could not stop prometheus.service" "$PROMETHEUS_DIR/apt.log"
    fi
}

prometheus_check_config() {
    [[ -f $PROMETHEUS_CONFIG ]] || fail prometheus "no configuration at $PROMETHEUS_CONFIG"
    promtool check config "$PROMETHEUS_CONFIG" >"$PROMETHEUS_DIR/check.log" 2>&1 ||
        fail prometheus "promtool check config $PROMETHEUS_CONFIG failed" "$PROMETHEUS_DIR/check.log"
}

prometheus_up() {
    prometheus_install
    mkdir -p "$PROMETHEUS_DIR"
    local pid
    if pid=$(prometheus_pid); then
        wait_ready prometheus 60 "$pid" prometheus_ready ||
            fail prometheus "running (pid $pid) but not ready on $HOST:$PROMETHEUS_PORT" "$PROMETHEUS_LOG"
        say prometheus "already running on $HOST:$PROMETHEUS_PORT (pid $pid)"
        return 0
    fi
    require_free_ports prometheus "$PROMETHEUS_PORT"
    prometheus_check_config
    say prometheus "starting on $HOST:$PROMETHEUS_PORT with ${PROMETHEUS_CONFIG#"$ROOT"/}"
    # --web.enable-lifecycle: `curl -X POST 127.0.0.1:9090/-/reload` reads the
    # configuration and the rules again without a restart.
    pid=$(spawn "$PROMETHEUS_LOG" prometheus --config.file="$PROMETHEUS_CONFIG" \
        --storage.tsdb.path="$PROMETHEUS_DATA" --storage.tsdb.retention.time=7d \
        --web.listen-address="$HOST:$PROMETHEUS_PORT" --web.enable-lifecycle)
    echo "$pid" >"$PROMETHEUS_PID"
    local started=$SECONDS status=0
    wait_ready prometheus 60 "$pid" prometheus_ready || status=$?
    case $status in
        0) say prometheus "ready on $HOST:$PROMETHEUS_PORT (pid $pid, $((SECONDS - started))s)" ;;
        2) rm -f "$PROMETHEUS_PID"
           fail prometheus "the server exited while starting" "$PROMETHEUS_LOG" ;;
        *) fail prometheus "not ready after $((SECONDS - started))s (pid $pid still running)" \
               "$PROMETHEUS_LOG" ;;
    esac
}

prometheus_down() {
    local pid
    if ! pid=$(prometheus_pid); then
        rm -f "$PROMETHEUS_PID"
        say prometheus "not running"
        return 0
    fi
    say prometheus "stopping (pid $pid)"
    stop_pid prometheus "$pid" 30
    rm -f "$PROMETHEUS_PID"
    say prometheus "stopped"
}

prometheus_status() {
    local pid
    if pid=$(prometheus_pid) && prometheus_ready >/dev/null 2>&1; then
        say prometheus "running  $HOST:$PROMETHEUS_PORT (pid $pid; data and log in ${PROMETHEUS_DIR#"$ROOT"/})"
    else
        say prometheus "stopped  $HOST:$PROMETHEUS_PORT"
        return 1
    fi
}
