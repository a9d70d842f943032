# Kafka's TLS and SASL/SCRAM material, shared by the single node (kafka.sh) and the
# three-node cluster (kafka3.sh): a CA and a broker certificate made with openssl, one
# password per SCRAM user, and the client configurations the tools use. All of it in
# $KAFKA_SECURITY_DIR, made once and kept (delete the directory to start over).
# Sourced by infra/infra.sh; the ACLs come from `ordersaga kafka acls`.

KAFKA_SECURITY_DIR="$CACHE/kafka-security"
KAFKA_CA="$KAFKA_SECURITY_DIR/ca.crt"
# The broker's key and certificate chain in one PEM file, as Kafka's PEM keystore reads it.
KAFKA_BROKER_PEM="$KAFKA_SECURITY_DIR/broker.pem"
# The brokers' own identity (TLS client certificate) on the inter-broker and controller
# listeners, and a super user: the only one besides `admin`.
KAFKA_BROKER_PRINCIPAL="User:CN=ordersaga-kafka-broker"
KAFKA_ADMIN_USER=admin
# The tools' configuration on the inter-broker listener, as the broker itself: what the
# infra uses to create the SCRAM users and the ACLs, before any user exists.
KAFKA_BROKER_CLIENT="$KAFKA_SECURITY_DIR/broker-client.properties"
# The tools' configuration on the SASL_SSL listener as `admin`, for people:
# kafka-consumer-groups --command-config .cache/kafka-security/admin-client.properties ...
KAFKA_ADMIN_CLIENT="$KAFKA_SECURITY_DIR/admin-client.properties"
# The services that log in as themselves (the principals of `ordersaga kafka acls`).
KAFKA_SERVICE_USERS=(order orchestrator stock payment)
KAFKA_SCRAM_ITERATIONS=8192
# How many of the tools that create the users and grant the ACLs run at once.
KAFKA_GRANT_JOBS=${KAFKA_GRANT_JOBS:-4}
# The command line that prints the ACLs (and so the service principals) from the code.
ORDERSAGA_CLI=${ORDERSAGA_CLI:-"$ROOT/.venv/bin/ordersaga"}

kafka_password_file() { echo "$KAFKA_SECURITY_DIR/$1.password"; }

# A password of 32 letters and digits, in a file only its owner reads.
kafka_new_password() { # file
    local password
    password=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 32)
    (umask 077 && printf '%s\n' "$password" >"$1")
}

kafka_certificates() {
    local dir=$KAFKA_SECURITY_DIR
    [[ -s $KAFKA_CA && -s $KAFKA_BROKER_PEM ]] && return 0
    command -v openssl >/dev/null || fail kafka "openssl is not installed (it makes Kafka's certificates)"
    say kafka "creating a CA and the broker certificate in ${dir#"$ROOT"/}"
    local log="$dir/openssl.log"
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ordersaga-kafka-ca" \
            -keyout "$dir/ca.key" -out "$KAFKA_CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash"
        openssl req -newkey rsa:2048 -nodes -subj "/${KAFKA_BROKER_PRINCIPAL#User:}" \
            -keyout "$dir/broker.key" -out "$dir/broker.csr"
        printf '%s\n' "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth,clientAuth" \
            "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$dir/broker.ext"
        openssl x509 -req -in "$dir/broker.csr" -CA "$KAFKA_CA" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 825 -extfile "$dir/broker.ext" -out "$dir/broker.crt"
        cat "$dir/broker.key" "$dir/broker.crt" >"$KAFKA_BROKER_PEM"
    ) >"$log" 2>&1 || { rm -f "$KAFKA_CA" "$KAFKA_BROKER_PEM"; fail kafka "openssl could not make the certificates" "$log"; }
    chmod 644 "$KAFKA_CA"
}

# Written to a new file and renamed: the single node and the cluster start side by side,
# and a tool of one must never read the file half written by the other.
kafka_client_files() {
    local admin_password user
    admin_password=$(cat "$(kafka_password_file "$KAFKA_ADMIN_USER")")
    (
        umask 077
        printf '%s\n' "security.protocol=SSL" "ssl.keystore.type=PEM" \
            "ssl.keystore.location=$KAFKA_BROKER_PEM" "ssl.truststore.type=PEM" \
            "ssl.truststore.location=$KAFKA_CA" >"$KAFKA_BROKER_CLIENT.$BASHPID"
        mv -f "$KAFKA_BROKER_CLIENT.$BASHPID" "$KAFKA_BROKER_CLIENT"
        printf '%s\n' "security.protocol=SASL_SSL" "sasl.mechanism=SCRAM-SHA-512" \
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$KAFKA_ADMIN_USER\" password=\"$admin_password\";" \
            "ssl.truststore.type=PEM" "ssl.truststore.location=$KAFKA_CA" >"$KAFKA_ADMIN_CLIENT.$BASHPID"
        mv -f "$KAFKA_ADMIN_CLIENT.$BASHPID" "$KAFKA_ADMIN_CLIENT"
    )
}

# ORDERSAGA_* of a client of the single node's secure listener, as `export` lines: the
# commands log in as admin, each service's replicas as that service (the three-node
# cluster takes the same, with its own bootstrap servers). Passwords stay in their files.
kafka_print_env() {
    local user
    printf 'export ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS=%q\n' "$HOST:$KAFKA_SECURE_PORT"
    printf 'export ORDERSAGA_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n'
    printf 'export ORDERSAGA_KAFKA_SASL_MECHANISM=SCRAM-SHA-512\n'
    printf 'export ORDERSAGA_KAFKA_SSL_CAFILE=%q\n' "$KAFKA_CA"
    printf 'export ORDERSAGA_KAFKA_SASL_USERNAME=%q\n' "$KAFKA_ADMIN_USER"
    printf 'export ORDERSAGA_KAFKA_SASL_PASSWORD_FILE=%q\n' "$(kafka_password_file "$KAFKA_ADMIN_USER")"
    for user in "${KAFKA_SERVICE_USERS[@]}"; do
        printf 'export ORDERSAGA_%s_KAFKA_SASL_USERNAME=%q\n' "${user^^}" "$user"
        printf 'export ORDERSAGA_%s_KAFKA_SASL_PASSWORD_FILE=%q\n' "${user^^}" "$(kafka_password_file "$user")"
    done
}

# The ACL lines of the code (one `kafka-acls` argument list per line).
kafka_acl_lines() {
    [[ -x $ORDERSAGA_CLI ]] ||
        fail kafka "$ORDERSAGA_CLI is missing: run \`make install\` first (it prints the ACLs Kafka gets)"
    "$ORDERSAGA_CLI" kafka acls --arguments
}

# The SCRAM users: admin and every principal the ACLs name.
kafka_users() { # acl-lines
    { echo "$KAFKA_ADMIN_USER"; grep -o 'User:[A-Za-z0-9_-]*' <<<"$1" | cut -d: -f2; } | awk '!seen[$0]++'
}

# CA, broker certificate, a password file per user (kept once made), client configs.
kafka_security_files() {
    mkdir -p "$KAFKA_SECURITY_DIR"
    chmod 700 "$KAFKA_SECURITY_DIR"
    kafka_certificates
    local user file
    KAFKA_ACLS=$(kafka_acl_lines)
    for user in $(kafka_users "$KAFKA_ACLS"); do
        file=$(kafka_password_file "$user")
        [[ -s $file ]] || kafka_new_password "$file"
    done
    kafka_client_files
}

kafka_tool() { # class args...
    local class=$1
    shift
    timeout 60 java -Xmx128m -XX:TieredStopAtLevel=1 "${KAFKA_LOGGING[@]}" \
        -cp "$KAFKA_LIBS/*" "$class" "$@"
}

# Create the SCRAM users and grant the ACLs through the broker's own listener, when the
# cluster (its id), a password or the ACLs changed since the last time: what is done is
# kept in the cluster's metadata, and each tool run costs a JVM start. The runs are
# independent of each other (a user's ACLs do not need the user), so a few go at once:
# each mostly waits for its JVM to load and for the broker to answer.
kafka_grant() { # part bootstrap cluster-id stamp-file
    local part=$1 bootstrap=$2 cluster_id=$3 stamp=$4 user want line
    local users
    users=$(kafka_users "$KAFKA_ACLS")
    want=$({
        echo "$cluster_id"
        echo "$KAFKA_ACLS"
        for user in $users; do sha256sum "$(kafka_password_file "$user")"; done
    } | sha256sum | cut -d' ' -f1)
    [[ $(cat "$stamp" 2>/dev/null || true) == "$want" ]] && return 0
    say "$part" "creating the SCRAM users and granting the ACLs"
    local logs="$KAFKA_SECURITY_DIR/grant-$part" runs=()
    rm -rf "$logs"
    mkdir -p "$logs"
    # The password is on the tool's command line for the second it runs (ConfigCommand
    # reads no SCRAM credential from a file): this machine's root, which runs it, already
    # reads the password files.
    for user in $users; do
        runs+=("kafka.admin.ConfigCommand --alter --entity-type users --entity-name $user --add-config SCRAM-SHA-512=[iterations=$KAFKA_SCRAM_ITERATIONS,password=$(cat "$(kafka_password_file "$user")")]")
    done
    while IFS= read -r line; do
        [[ -n $line ]] && runs+=("org.apache.kafka.tools.AclCommand --add --force $line")
    done <<<"$KAFKA_ACLS"
    local i args failed=()
    local -A pids=()
    for i in "${!runs[@]}"; do
        read -r -a args <<<"${runs[$i]}"
        while (($(jobs -rp | wc -l) >= KAFKA_GRANT_JOBS)); do wait -n || true; done
        kafka_tool "${args[0]}" --bootstrap-server "$bootstrap" \
            --command-config "$KAFKA_BROKER_CLIENT" "${args[@]:1}" >"$logs/$i.log" 2>&1 &
        pids[$i]=$!
    done
    for i in "${!runs[@]}"; do
        wait "${pids[$i]}" || failed+=("$i")
    done
    if ((${#failed[@]})); then
        read -r -a args <<<"${runs[${failed[0]}]}"
        fail "$part" "could not create the SCRAM users and grant the ACLs (${#failed[@]} of ${#runs[@]} failed, first: ${args[0]##*.} ${args[*]:1:5} ...)" "$logs/${failed[0]}.log"
    fi
    echo "$want" >"$stamp"
}

# server.properties lines for TLS, SASL/SCRAM and the authorizer (the listeners are the
# part's own). Super users: the brokers, admin and, with a PLAINTEXT listener, anyone on it.
kafka_security_properties() { # with-plaintext
    local super="$KAFKA_BROKER_PRINCIPAL;User:$KAFKA_ADMIN_USER"
    [[ $1 == on ]] && super+=";User:ANONYMOUS"
    cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_BROKER_PEM
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_CA
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=$super
EOF
}
