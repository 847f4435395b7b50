# SPDX-License-Identifier: Apache-2.0
# TLS helpers: a reserved free port on 127.0.0.1, an openssl s_server in
# the background that is ready when the call returns (stopped at exit), and
# waiting for a one-shot server to finish.
# shellcheck shell=sh

# free_port_band: "LO HI", the ports free_port picks from: outside the
# kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), from
# which every process's outgoing connections take their local port, so
# that no connection of another process can hold a port between
# free_port and the server's bind (s_server then fails with "Address
# already in use").  Below the range from 10000 when that leaves 1024
# ports, else above it; 10000-32767 when /proc cannot be read (32768 is
# Linux's default start of the range).  Fails (1) when neither side has
# 1024 ports.
free_port_band() {
    if read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
        [ "$elo" -gt 0 ] 2>/dev/null && [ "$ehi" -ge "$elo" ] 2>/dev/null; then
        if [ "$elo" -ge 11024 ]; then
            echo "10000 $((elo - 1))"
        elif [ "$ehi" -le 64511 ]; then
            echo "$((ehi + 1)) 65535"
        else
            echo "free_port: the ephemeral range $elo-$ehi leaves no 1024 ports outside it above 10000" >&2
            return 1
        fi
    else
        echo "10000 32767"
    fi
}

# free_port: print a TCP port with no socket on it, in free_port_band,
# reserved for this test: tests run in parallel, and two that picked the
# same port would talk to each other's servers.  A reservation is a
# directory made atomically (mkdir) in a per-user folder; reservations
# older than 30 minutes (runs that ended) are taken back.  Never prints a
# port it could not reserve.
free_port() {
    band=$(free_port_band) || return 1
    blo=${band% *}
    bhi=${band#* }
    pdir=${TMPDIR:-/tmp}/p11ca-test-ports-$(id -u)
    mkdir -p "$pdir" 2>/dev/null
    find "$pdir" -mindepth 1 -maxdepth 1 -mmin +30 -exec rmdir {} + 2>/dev/null
    tries=0
    while [ $tries -lt 1000 ]; do
        p=$((blo + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (bhi - blo + 1)))
        tries=$((tries + 1))
        # Any socket on it, listening or not, local or remote end.
        if (ss -Htan 2>/dev/null || netstat -tan 2>/dev/null) | grep -q ":$p "; then
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
# its log is shown and the script bails out.  A port that is taken
# (s_server: "Address already in use") is said so, not retried: with
# free_port's reservations and band, only a process outside the test
# suite can have bound it, and a retry would hide that.  -brief and
# -quiet hide the ACCEPT line and are refused; so is a server without
# -www, -WWW or -HTTP: in its interactive mode s_server (unless -quiet)
# takes the end of its standard input, /dev/null, as its operator
# quitting, in the middle of the first client's handshake.
# Started through env(1), not through the sanitizer builds' openssl()
# function: SERVER_PID is then the server itself, which stop_servers can
# kill (a function would run in a subshell, and kill would leave the
# server behind).
start_server_ready() {
    log=$1
    shift
    web=
    accept=
    prev=
    for a in "$@"; do
        [ "$prev" = -accept ] && accept=$a
        prev=$a
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
            if [ $i -ge 1200 ]; then
                why="did not listen within 120 s"
            elif grep -q 'Address already in use' "$log"; then
                why="could not listen on ${accept:-its port}: another process has a socket on that port (not a test of this suite: free_port reserves its ports)"
            else
                why="exited before it listened"
            fi
            diag "s_server $why; its log ($log):"
            diag "$(cat "$log")"
            echo "Bail out! s_server $why (its log is above)"
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

# temp_key LOG: the key exchange an s_client log names, "ECDH, prime256v1"
# (OpenSSL 3.0 says "Server Temp Key: ECDH, prime256v1, 256 bits", 3.2+
# "Peer Temp Key: ..."); empty when there is none.
temp_key() {
    sed -n 's/^\(Server\|Peer\) Temp Key: \([^,]*, [^,]*\).*/\2/p' "$1" | head -n 1
}
