# A three-node Apache Kafka cluster in KRaft mode (each node broker and controller),
# replication factor 3, min.insync.replicas 2, on 127.0.0.1:29092, 29094, 29096, SASL_SSL
# only (inter-broker 29093, 29095, 29097 and controllers 29193, 29195, 29197, TLS with
# client certificates). Run from the same jars, CA and SCRAM users as the single node
# (kafka.sh and kafka-security.sh, sourced first). Sourced by infra/infra.sh as the part
# `kafka3`. KAFKA3_PORT_BASE and KAFKA3_CONTROLLER_PORT_BASE (default 29090, 29191) and
# KAFKA3_DIR move it, to run a second cluster beside this one.
#
# `up` starts the nodes that are not running, so a test that killed one brings it back
# with `infra/infra.sh up kafka3`; each node's pid is in .cache/kafka3/node-N/kafka.pid.
# KAFKA3_UP="2" (node ids, space-separated) starts and waits for those nodes only, as a
# test does that brings one node of two back. Two settings for tests that restart nodes
# under load: KAFKA3_JAVA_OPTS, more options for the nodes' JVMs (tests/realstack/cluster.py
# passes -XX:TieredStopAtLevel=1, a quicker start); KAFKA3_READY=port, `up` waits for the
# nodes' ports only and the caller for their answers.

KAFKA3_DIR=${KAFKA3_DIR:-"$CACHE/kafka3"}
KAFKA3_PORT_BASE=${KAFKA3_PORT_BASE:-29090}
KAFKA3_CONTROLLER_PORT_BASE=${KAFKA3_CONTROLLER_PORT_BASE:-29191}
KAFKA3_GRANTED="$KAFKA3_DIR/granted.sha256"
KAFKA3_NODES=(1 2 3)
KAFKA3_TEMPLATE="$INFRA/kafka/cluster.properties"

kafka3_port() { echo $((KAFKA3_PORT_BASE + 2 * $1)); }
kafka3_internal_port() { echo $((KAFKA3_PORT_BASE + 1 + 2 * $1)); }
kafka3_controller_port() { echo $((KAFKA3_CONTROLLER_PORT_BASE + 2 * $1)); }
kafka3_node_dir() { echo "$KAFKA3_DIR/node-$1"; }
kafka3_config() { echo "$(kafka3_node_dir "$1")/node-$1.properties"; }

# The address clients use: every node, so that any one of them is enough to start.
kafka3_bootstrap() { # [port-function]
    local n addresses=() port=${1:-kafka3_port}
    for n in "${KAFKA3_NODES[@]}"; do addresses+=("$HOST:$($port "$n")"); done
    local IFS=,
    echo "${addresses[*]}"
}

kafka3_pid() { # node
    local pid config
    config=$(kafka3_config "$1")
    for pid in "$(cat "$(kafka3_node_dir "$1")/kafka.pid" 2>/dev/null || true)" \
        "$(port_owner "$(kafka3_port "$1")")"; do
        if pid_matches "$pid" kafka.Kafka "$config"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

kafka3_write_config() { # node
    local n=$1 dir
    dir=$(kafka3_node_dir "$n")
    mkdir -p "$dir"
    local voters=() v
    for v in "${KAFKA3_NODES[@]}"; do voters+=("$v@$HOST:$(kafka3_controller_port "$v")"); done
    {
        sed -e "s/@ID@/$n/" -e "s/@PORT@/$(kafka3_port "$n")/" \
            -e "s/@INTERNAL_PORT@/$(kafka3_internal_port "$n")/" \
            -e "s/@CONTROLLER_PORT@/$(kafka3_controller_port "$n")/" -e "s#@DATA@#$dir/data#" \
            -e "s/@VOTERS@/$(IFS=,; echo "${voters[*]}")/" "$KAFKA3_TEMPLATE"
        kafka_security_properties off
    } >"$(kafka3_config "$n")"
}

# Format every node's storage with one cluster id, the first time.
kafka3_format() {
    local n cluster_id="" id_file="$KAFKA3_DIR/cluster.id"
    [[ -f $id_file ]] && cluster_id=$(cat "$id_file")
    if [[ -z $cluster_id ]]; then
        cluster_id=$(java -cp "$KAFKA_LIBS/*" "${KAFKA_LOGGING[@]}" kafka.tools.StorageTool random-uuid) ||
            fail kafka3 "could not generate a cluster id"
        echo "$cluster_id" >"$id_file"
    fi
    # The nodes side by side: each format is a JVM start.
    local -A formats=()
    for n in "${KAFKA3_NODES[@]}"; do
        [[ -f $(kafka3_node_dir "$n")/data/meta.properties ]] && continue
        say kafka3 "formatting node $n's storage"
        java -cp "$KAFKA_LIBS/*" "${KAFKA_LOGGING[@]}" kafka.tools.StorageTool format \
            --config "$(kafka3_config "$n")" --cluster-id "$cluster_id" \
            >"$(kafka3_node_dir "$n")/format.log" 2>&1 &
        formats[$n]=$!
    done
    for n in "${!formats[@]}"; do
        wait "${formats[$n]}" ||
            fail kafka3 "could not format node $n's storage" "$(kafka3_node_dir "$n")/format.log"
    done
}

kafka3_answers() { # node
    timeout 30 java -Xmx128m -XX:TieredStopAtLevel=1 "${KAFKA_LOGGING[@]}" \
        -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$HOST:$(kafka3_internal_port "$1")" \
        --command-config "$KAFKA_BROKER_CLIENT" --list
}

kafka3_start_node() { # node; prints the pid
    local n=$1 dir
    dir=$(kafka3_node_dir "$n")
    require_free_ports kafka3 "$(kafka3_port "$n")" "$(kafka3_internal_port "$n")" \
        "$(kafka3_controller_port "$n")"
    [[ -f $dir/console.log ]] && mv -f "$dir/console.log" "$dir/console.log.1"
    local extra
    read -r -a extra <<<"${KAFKA3_JAVA_OPTS:-}"
    spawn "$dir/console.log" java -Xms128m -Xmx"${KAFKA3_HEAP:-384m}" -XX:+UseG1GC "${extra[@]}" \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$INFRA/kafka/log4j2.xml" -Dkafka.logs.dir="$dir" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$(kafka3_config "$n")"
}

kafka3_up() {
    mkdir -p "$KAFKA3_DIR"
    local n pid started=$SECONDS status
    local -A pids=() running=()
    kafka_libs
    kafka_security_files
    for n in "${KAFKA3_NODES[@]}"; do kafka3_write_config "$n"; done
    kafka3_format
    local wanted
    read -r -a wanted <<<"${KAFKA3_UP:-${KAFKA3_NODES[*]}}"
    for n in "${wanted[@]}"; do
        if pid=$(kafka3_pid "$n"); then
            pids[$n]=$pid
            if [[ $(ps -o state= -p "$pid" 2>/dev/null) == T* ]]; then
                # A stopped (SIGSTOP) node is running but answers nothing: let it go on.
                kill -CONT "$pid" 2>/dev/null || true
            else
                running[$n]=1
            fi
            continue
        fi
        say kafka3 "starting node $n on $HOST:$(kafka3_port "$n")"
        pid=$(kafka3_start_node "$n")
        echo "$pid" >"$(kafka3_node_dir "$n")/kafka.pid"
        pids[$n]=$pid
    done
    # The nodes elect a controller among themselves: wait for all three together.
    for n in "${wanted[@]}"; do
        status=0
        wait_ready kafka3 120 "${pids[$n]}" port_open "$(kafka3_port "$n")" || status=$?
        # A node that was running, and not stopped, has answered before: asking it again
        # costs a JVM start, at every `up` a test runs to bring back a node it killed.
        # KAFKA3_READY=port (a test that asks the node itself) leaves that JVM out.
        ((status == 0)) && [[ -z ${running[$n]:-} && ${KAFKA3_READY:-} != port ]] &&
            { wait_ready kafka3 90 "${pids[$n]}" kafka3_answers "$n" || status=$?; }
        case $status in
            0) ;;
            2) rm -f "$(kafka3_node_dir "$n")/kafka.pid"
               fail kafka3 "node $n exited while starting" \
                   "$(kafka3_node_dir "$n")/console.log" "$(kafka3_node_dir "$n")/broker.log" ;;
            *) fail kafka3 "node $n not ready after $((SECONDS - started))s" \
                   "$(kafka3_node_dir "$n")/console.log" "$(kafka3_node_dir "$n")/broker.log" ;;
        esac
    done
    kafka_grant kafka3 "$(kafka3_bootstrap kafka3_internal_port)" "$(cat "$KAFKA3_DIR/cluster.id")" \
        "$KAFKA3_GRANTED"
    say kafka3 "ready on $(kafka3_bootstrap) ($((SECONDS - started))s)"
}

kafka3_down() {
    local n pid any=0
    for n in "${KAFKA3_NODES[@]}"; do
        pid=$(kafka3_pid "$n") || continue
        any=1
        kill -CONT "$pid" 2>/dev/null || true
        say kafka3 "stopping node $n (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
    done
    # All at once: a node shutting down alone waits for the others to take its leaders.
    for n in "${KAFKA3_NODES[@]}"; do
        pid=$(kafka3_pid "$n") || { rm -f "$(kafka3_node_dir "$n")/kafka.pid"; continue; }
        stop_pid kafka3 "$pid" 60
        rm -f "$(kafka3_node_dir "$n")/kafka.pid"
    done
    ((any)) && say kafka3 "stopped" || say kafka3 "not running"
}

kafka3_status() {
    local n pid stopped=0
    for n in "${KAFKA3_NODES[@]}"; do
        if pid=$(kafka3_pid "$n") && port_open "$(kafka3_port "$n")"; then
            say kafka3 "node $n running  $HOST:$(kafka3_port "$n") (pid $pid)"
        else
            say kafka3 "node $n stopped  $HOST:$(kafka3_port "$n")"
            stopped=1
        fi
    done
    return $stopped
}
