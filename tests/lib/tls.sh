# SPDX-License-Identifier: Apache-2.0
# TLS helpers: a free port on 127.0.0.1, an openssl s_server in the
# background (stopped at exit), and waiting until it accepts.
# shellcheck shell=sh

# free_port: print a TCP port nobody listens on, reserved for this test:
# tests run in parallel, and two that picked the same port would talk to
# each other's servers.  A reservation is a directory made atomically
# (mkdir) in a per-user folder; reservations older than 30 minutes (runs
# that ended) are taken back.
free_port() {
    pdir=${TMPDIR:-/tmp}/p11ca-test-ports-$(id -u)
    mkdir -p "$pdir" 2>/dev/null
    find "$pdir" -mindepth 1 -maxdepth 1 -mmin +30 -exec rmdir {} + 2>/dev/null
    tries=0
    while :; do
        p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        tries=$((tries + 1))
        if (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -q ":$p "; then
            continue
        fi
        if mkdir "$pdir/$p" 2>/dev/null || [ $tries -gt 1000 ]; then
            echo "$p"
            return
        fi
    done
}

SERVER_PIDS=""
# start_server LOGFILE ARGS...: s_server in the background; sets SERVER_PID.
# Started through env(1), not through the sanitizer builds' openssl()
# function: SERVER_PID is then the server itself, which stop_servers can
# kill (a function would run in a subshell, and kill would leave the
# server behind).
start_server() {
    log=$1
    shift
    # shellcheck disable=SC2086 # OPENSSL_ENV holds several assignments
    env ${OPENSSL_ENV:-} openssl s_server "$@" >"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_PIDS="$SERVER_PIDS $SERVER_PID"
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        if (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -q "127.0.0.1:$1 "; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

stop_servers() {
    for p in $SERVER_PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    SERVER_PIDS=""
}
