# Shared by the infra/*.sh parts: paths, messages, waiting, ports and processes.
# Sourced, never run; the caller has `set -euo pipefail`.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
# INFRA_CACHE: another checkout's .cache, to drive the servers that checkout started.
CACHE="${INFRA_CACHE:-$ROOT/.cache}"
# Servers only ever listen here.
HOST=127.0.0.1
# sbin holds mariadbd and pg tools; a login shell has it, `make` under sudo may not.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { # part message...
    local part=$1
    shift
    printf 'infra: %-8s %s\n' "$part" "$*"
}

# Print the last lines of each existing log, then stop with an error naming the part.
fail() { # part message [log...]
    local part=$1 message=$2 log
    shift 2
    REPORTED=1
    printf 'infra: %-8s FAILED: %s\n' "$part" "$message" >&2
    for log in "$@"; do
        if [[ -s $log ]]; then
            printf -- '----- last lines of %s -----\n' "$log" >&2
            tail -n 40 "$log" >&2
            printf -- '-----\n' >&2
        fi
    done
    exit 1
}

# On an exit nobody explained (a command failing under `set -e`), still name the part.
report_unexpected_exit() {
    local status=$?
    if ((status != 0)) && [[ -z ${REPORTED:-} ]]; then
        printf 'infra: %-8s FAILED: unexpected error (exit status %d), see above\n' \
            "${CURRENT_PART:-infra}" "$status" >&2
    fi
}

port_open() { # port
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# The pid listening on TCP port $1 on any address, or nothing.
port_owner() { # port
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# True when process $1 exists and its command line contains every following word.
pid_matches() { # pid word...
    local pid=$1 cmdline word
    shift
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    for word in "$@"; do
        [[ $cmdline == *"$word"* ]] || return 1
    done
}

describe_pid() { # pid
    ps -o pid=,args= -p "$1" 2>/dev/null | cut -c1-160 || true
}

# Fail unless every port is free; a server we did not start must not be mistaken for ours.
require_free_ports() { # part port...
    local part=$1 port owner
    shift
    for port in "$@"; do
        if port_open "$port"; then
            owner=$(port_owner "$port")
            fail "$part" "port $HOST:$port is already taken by another process: ${owner:+$(describe_pid "$owner")}"
        fi
    done
}

# Poll a readiness command until it succeeds. Gives up after $2 seconds, or at once
# when the server process $3 has died (so a crash is reported without the full wait).
wait_ready() { # part seconds pid command...
    local part=$1 seconds=$2 pid=$3 deadline
    shift 3
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 2
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# SIGTERM, so the server shuts down cleanly, and wait until it is gone; SIGKILL after $3 s.
stop_pid() { # part pid seconds
    local part=$1 pid=$2 seconds=$3 deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + seconds))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "$part" "did not stop within ${seconds}s; killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
            while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
            break
        fi
        sleep 0.2
    done
}

# Start a server in the background, in its own session so that Ctrl-C in the terminal
# that ran `make infra-up` does not reach it; prints its pid. File descriptor 9 holds the
# lock of infra.sh: a server inheriting it would keep it locked for as long as it runs.
spawn() { # logfile command...
    local log=$1
    shift
    setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
    echo $!
}
