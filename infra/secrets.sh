# Passwords and certificates the infra makes for itself: generated once, kept in files
# readable by root alone, never printed. Sourced by infra/infra.sh.

SECRETS="$CACHE/secrets"

# The path of the password file $1 (in directory $2, $SECRETS by default), created with
# a random password when missing.
secret_file() { # name [directory]
    local dir=${2:-$SECRETS}
    local file="$dir/$1.password"
    if [[ ! -s $file ]]; then
        mkdir -p "$dir"
        chmod 700 "$dir"
        (umask 077 && openssl rand -hex 24 >"$file.new" && mv "$file.new" "$file")
    fi
    echo "$file"
}

# A CA and a server certificate for 127.0.0.1 and localhost, made with openssl into $1
# (ca.crt, server.crt, server.key) when missing or expiring within a day.
make_server_certificate() { # dir common-name
    local dir=$1 name=$2
    if [[ -s $dir/server.crt ]] && openssl x509 -checkend 86400 -noout -in "$dir/server.crt" >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p "$dir"
    (
        umask 077
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=ordersaga test CA" \
            -keyout ca.key -out ca.crt >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" \
            -keyout server.key -out server.csr >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
            -extfile server.ext -out server.crt >/dev/null 2>&1
        rm -f server.csr server.ext ca.srl
        chmod 644 ca.crt server.crt
    ) || fail "${CURRENT_PART:-infra}" "openssl could not make the certificates in $dir"
}
