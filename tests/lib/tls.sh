# SPDX-License-Identifier: Apache-2.0
# TLS helpers: a reserved free port on 127.0.0.1, an openssl s_server in
# the background that is ready when the call returns (stopped at exit), and
# waiting for a one-shot server to finish.
# shellcheck shell=sh

# free_port: print a TCP port nobody listens on, reserved for this test:
# tests run in parallel, and two that picked the same port would talk to
# each other's servers.  A reservation is a directory made atomically
# (mkdir) in a per-user folder; reservations older than 30 minutes (runs
# that ended) are taken back.  Never prints a port it could not reserve.
free_port() {
    pdir=${TMPDIR:-/tmp}/p11ca-test-ports-$(id -u)
    mkdir -p "$pdir" 2>/dev/null
    find "$pdir" -mindepth 1 -maxdepth 1 -mmin +30 -exec rmdir {} + 2>/dev/null
    tries=0
    while [ $tries -lt 1000 ]; do
        p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        tries=$((tries + 1))
        if (ss -ltn 2>/dev/null || netstat -ltn 2>/dev/null) | grep -q ":$p "; then
            continue
        fi
        if mkdir "$pdir/$p" 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "free_port: no port could be reserved in $pdir" >&2
    return 1
}

SERVER_PIDS=""
# start_server_ready LOGFILE ARGS...: `openssl s_server ARGS` in the
# background, its output in LOGFILE; returns once the server listens, and
# sets SERVER_PID.  Ready means its "ACCEPT" line, which s_server writes
# (and flushes) after listen(2): nothing connects to find out, so a
# one-shot server (-naccept 1) is left for the test's own client.  A
# server that exits first, or is not ready within 120 s, fails the test:
# its log is shown and the script bails out.  -brief and -quiet hide the
# ACCEPT line and are refused; so is a server without -www, -WWW or -HTTP:
# in its interactive mode s_server (unless -quiet) takes the end of its
# standard input, /dev/null, as its operator quitting, in the middle of
# the first client's handshake.
# Started through env(1), not through the sanitizer builds' openssl()
# function: SERVER_PID is then the server itself, which stop_servers can
# kill (a function would run in a subshell, and kill would leave the
# server behind).
start_server_ready() {
    log=$1
    shift
    web=
    for a in "$@"; do
        case $a in
        -brief | -quiet)
            echo "Bail out! start_server_ready: s_server $a hides the ACCEPT line it waits for"
            exit 1
            ;;
        -www | -WWW | -HTTP) web=$a ;;
        esac
    done
    if [ -z "$web" ]; then
        echo "Bail out! start_server_ready: give s_server -www, -WWW or -HTTP"
        exit 1
    fi
    # Emptied here, before the server starts: the log of an earlier server
    # would say ACCEPT before this one has even opened the file.
    : >"$log"
    # shellcheck disable=SC2086 # OPENSSL_ENV holds several assignments
    env ${OPENSSL_ENV:-} openssl s_server "$@" >>"$log" 2>&1 </dev/null &
    SERVER_PID=$!
    SERVER_PIDS="$SERVER_PIDS $SERVER_PID"
    i=0
    while ! grep -q '^ACCEPT' "$log"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ $i -ge 1200 ]; then
            grep -q '^ACCEPT' "$log" && return 0
            diag "s_server (log $log) did not get ready:"
            diag "$(cat "$log")"
            echo "Bail out! s_server did not start (its log is above)"
            exit 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
}

# server_done: the last server started has exited by itself (a one-shot
# server once its client is done: its log is complete), waited for at most
# 120 s; then every server still running is stopped (a client that failed
# before it connected leaves a one-shot server waiting).
server_done() {
    i=0
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 1200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    stop_servers
}

stop_servers() {
    for p in $SERVER_PIDS; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    SERVER_PIDS=""
}
