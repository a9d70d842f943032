# Apache Kafka, single node in KRaft mode (broker and controller in one JVM), run from
# the jars Maven resolves from infra/kafka/pom.xml. Sourced by infra/infra.sh.

# Ports and the data directory may be overridden, to run a second broker beside this one.
# 9092 is PLAINTEXT, unauthenticated: for the quick paths on this machine only, and off
# with KAFKA_PLAINTEXT=off. 9094 is SASL_SSL (SCRAM-SHA-512) with per-service ACLs.
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_PLAINTEXT=${KAFKA_PLAINTEXT:-on}
KAFKA_SECURE_PORT=${KAFKA_SECURE_PORT:-9094}
KAFKA_INTERNAL_PORT=${KAFKA_INTERNAL_PORT:-9095}   # inter-broker, TLS client certificates
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_DIR=${KAFKA_DIR:-"$CACHE/kafka"}
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_LIBS_STAMP="$KAFKA_DIR/libs.sha256"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/broker.log"        # log4j, warnings and errors
KAFKA_CONSOLE="$KAFKA_DIR/console.log"   # the JVM's own stdout/stderr, last start only
KAFKA_FORMAT_LOG="$KAFKA_DIR/format.log"
KAFKA_MAVEN_LOG="$KAFKA_DIR/maven.log"
KAFKA_TEMPLATE="$INFRA/kafka/server.properties"
KAFKA_CONFIG="$KAFKA_DIR/server.properties"   # written from the template at every start
KAFKA_GRANTED="$KAFKA_DIR/granted.sha256"
KAFKA_HEAP=${KAFKA_HEAP:-512m}
# Both the broker and the command-line tools log through this configuration.
KAFKA_LOGGING=(-Dlog4j2.configurationFile="$INFRA/kafka/log4j2.xml" -Dkafka.logs.dir="$KAFKA_DIR")

# The broker's pid, from the pid file or else from whoever owns the port, as long as it
# is this repository's broker.
kafka_pid() {
    local pid
    for pid in "$(cat "$KAFKA_PID" 2>/dev/null || true)" "$(port_owner "$KAFKA_SECURE_PORT")"; do
        if pid_matches "$pid" kafka.Kafka "$KAFKA_CONFIG"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# Resolve the jars once; again only when the pom changes.
kafka_libs() {
    local want
    want=$(sha256sum "$INFRA/kafka/pom.xml" | cut -d' ' -f1)
    if [[ -d $KAFKA_LIBS && $(cat "$KAFKA_LIBS_STAMP" 2>/dev/null || true) == "$want" ]]; then
        return 0
    fi
    mkdir -p "$KAFKA_DIR"
    command -v java >/dev/null || fail kafka "java is not installed (Kafka needs Java 17 or later)"
    command -v mvn >/dev/null || fail kafka "mvn is not installed (it resolves the Kafka jars)"
    say kafka "resolving the Kafka jars with Maven into ${KAFKA_LIBS#"$ROOT"/} (once)"
    rm -rf "$KAFKA_LIBS" "$KAFKA_LIBS_STAMP"
    if ! mvn -B --no-transfer-progress -f "$INFRA/kafka/pom.xml" \
        -DoutputDirectory="$KAFKA_LIBS" package >"$KAFKA_MAVEN_LOG" 2>&1; then
        rm -rf "$KAFKA_LIBS"
        fail kafka "Maven could not resolve the Kafka jars" "$KAFKA_MAVEN_LOG"
    fi
    echo "$want" >"$KAFKA_LIBS_STAMP"
}

# Answers a metadata request, not just a TCP connect: the broker has joined its own
# quorum. Asked on the inter-broker listener, as the broker: no SCRAM user is needed yet.
kafka_answers() {
    timeout 30 java -Xmx128m -XX:TieredStopAtLevel=1 "${KAFKA_LOGGING[@]}" \
        -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$HOST:$KAFKA_INTERNAL_PORT" --command-config "$KAFKA_BROKER_CLIENT" --list
}

kafka_write_config() {
    local listeners="SASL_SSL://$HOST:$KAFKA_SECURE_PORT,INTERNAL://$HOST:$KAFKA_INTERNAL_PORT"
    [[ $KAFKA_PLAINTEXT == on ]] && listeners="PLAINTEXT://$HOST:$KAFKA_PORT,$listeners"
    {
        sed -e "s#@LISTENERS@#$listeners#" -e "s#@CONTROLLER@#$HOST:$KAFKA_CONTROLLER_PORT#g" \
            -e "s#@DATA@#$KAFKA_DATA#" "$KAFKA_TEMPLATE"
        kafka_security_properties "$KAFKA_PLAINTEXT"
    } >"$KAFKA_CONFIG"
}

kafka_ports() {
    local ports=("$KAFKA_SECURE_PORT" "$KAFKA_INTERNAL_PORT" "$KAFKA_CONTROLLER_PORT")
    [[ $KAFKA_PLAINTEXT == on ]] && ports+=("$KAFKA_PORT")
    echo "${ports[*]}"
}

kafka_cluster_id() {
    sed -n 's/^cluster.id=//p' "$KAFKA_DATA/meta.properties"
}

kafka_format() {
    [[ -f $KAFKA_DATA/meta.properties ]] && return 0
    say kafka "formatting the storage in ${KAFKA_DATA#"$ROOT"/}"
    local cluster_id
    cluster_id=$(java -cp "$KAFKA_LIBS/*" "${KAFKA_LOGGING[@]}" kafka.tools.StorageTool random-uuid) ||
        fail kafka "could not generate a cluster id" "$KAFKA_LOG"
    java -cp "$KAFKA_LIBS/*" "${KAFKA_LOGGING[@]}" kafka.tools.StorageTool format \
        --config "$KAFKA_CONFIG" --cluster-id "$cluster_id" >"$KAFKA_FORMAT_LOG" 2>&1 ||
        fail kafka "could not format the storage" "$KAFKA_FORMAT_LOG" "$KAFKA_LOG"
}

kafka_up() {
    mkdir -p "$KAFKA_DIR"
    local pid
    if pid=$(kafka_pid); then
        port_open "$KAFKA_SECURE_PORT" || wait_ready kafka 120 "$pid" port_open "$KAFKA_SECURE_PORT" ||
            fail kafka "running (pid $pid) but not listening on $HOST:$KAFKA_SECURE_PORT" "$KAFKA_LOG"
        kafka_security_files
        kafka_grant kafka "$HOST:$KAFKA_INTERNAL_PORT" "$(kafka_cluster_id)" "$KAFKA_GRANTED"
        say kafka "already running on $HOST:$KAFKA_SECURE_PORT (pid $pid)"
        return 0
    fi
    # shellcheck disable=SC2046
    require_free_ports kafka $(kafka_ports)
    kafka_libs
    kafka_security_files
    kafka_write_config
    kafka_format
    say kafka "starting on $HOST:$KAFKA_SECURE_PORT (SASL_SSL)$([[ $KAFKA_PLAINTEXT == on ]] && echo " and $HOST:$KAFKA_PORT (PLAINTEXT)")"
    # A fresh console log, so a failure shows this start's output and nothing older.
    [[ -f $KAFKA_CONSOLE ]] && mv -f "$KAFKA_CONSOLE" "$KAFKA_CONSOLE.1"
    pid=$(spawn "$KAFKA_CONSOLE" java -Xms128m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "${KAFKA_LOGGING[@]}" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG")
    echo "$pid" >"$KAFKA_PID"
    local started=$SECONDS status=0
    wait_ready kafka 120 "$pid" port_open "$KAFKA_SECURE_PORT" || status=$?
    ((status == 0)) && { wait_ready kafka 90 "$pid" kafka_answers || status=$?; }
    case $status in
        0) kafka_grant kafka "$HOST:$KAFKA_INTERNAL_PORT" "$(kafka_cluster_id)" "$KAFKA_GRANTED"
           say kafka "ready on $HOST:$KAFKA_SECURE_PORT (pid $pid, $((SECONDS - started))s)" ;;
        2) rm -f "$KAFKA_PID"
           fail kafka "the broker exited while starting" "$KAFKA_CONSOLE" "$KAFKA_LOG" ;;
        *) fail kafka "not ready after $((SECONDS - started))s (pid $pid still running)" \
               "$KAFKA_CONSOLE" "$KAFKA_LOG" ;;
    esac
}

kafka_down() {
    local pid
    if ! pid=$(kafka_pid); then
        rm -f "$KAFKA_PID"
        say kafka "not running"
        return 0
    fi
    say kafka "stopping (pid $pid)"
    # A clean shutdown of a single node takes a few seconds; recovery after a kill, longer.
    stop_pid kafka "$pid" 60
    rm -f "$KAFKA_PID"
    say kafka "stopped"
}

kafka_status() {
    local pid
    if pid=$(kafka_pid) && port_open "$KAFKA_SECURE_PORT"; then
        say kafka "running  $HOST:$KAFKA_SECURE_PORT SASL_SSL$([[ $KAFKA_PLAINTEXT == on ]] && echo ", $HOST:$KAFKA_PORT PLAINTEXT") (pid $pid; data and logs in ${KAFKA_DIR#"$ROOT"/})"
    else
        say kafka "stopped  $HOST:$KAFKA_SECURE_PORT"
        return 1
    fi
}
