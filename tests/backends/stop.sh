#!/usr/bin/env bash
# tests/backends/stop.sh — stop the private MariaDB (127.0.0.1:3307) and the
# Redis Cluster (127.0.0.1:7001-7006) that tests/backends/start.sh started.
#
# Why this exists: those servers are detached daemons that outlive the test
# run on purpose (quick reruns); this is the one clean way to end them, and
# with --purge to throw their data away so the next start.sh begins afresh.
# Only processes whose pid files / data dirs are ours are touched. Idempotent:
# stopping what is not running is fine.
#
# Usage: bash tests/backends/stop.sh [--purge]
# Environment: DISTSHOP_BACKENDS_DIR (default /tmp/distshop-backends)
set -euo pipefail

BACKENDS_DIR="${DISTSHOP_BACKENDS_DIR:-/tmp/distshop-backends}"
if [[ -d "$BACKENDS_DIR" ]]; then
    BACKENDS_DIR="$(cd "$BACKENDS_DIR" && pwd -P)"
fi
STOP_WAIT_SECS=60

MARIADB_DIR="$BACKENDS_DIR/mariadb"
MARIADB_SOCK="$MARIADB_DIR/mariadb.sock"
MARIADB_PID="$MARIADB_DIR/mariadb.pid"
REDIS_DIR="$BACKENDS_DIR/redis"
REDIS_PORTS=(7001 7002 7003 7004 7005 7006)

log() { printf '[backends] %s\n' "$*" >&2; }
die() {
    printf '[backends] ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    echo "usage: bash tests/backends/stop.sh [--purge]"
    echo "  --purge   also delete $BACKENDS_DIR (data, logs, env.sh)"
}

PURGE=0
for arg in "$@"; do
    case "$arg" in
    --purge) PURGE=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
done

# Prints the pid in file $1 if it is alive and its command name contains $2.
live_pid() {
    local pid comm
    [[ -f "$1" ]] || return 1
    pid="$(tr -dc '0-9' <"$1")"
    [[ -n "$pid" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == *"$2"* ]] || return 1
    # A killed daemon may linger as a zombie until its reaper gets to it.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    echo "$pid"
}

# Waits for pid $1 to exit; TERM then KILL it if it overstays. $2 names it.
wait_gone() {
    local pid=$1 what=$2 deadline=$((SECONDS + STOP_WAIT_SECS))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$what (pid $pid) still running after ${STOP_WAIT_SECS}s: sending SIGTERM"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 5
            if kill -0 "$pid" 2>/dev/null; then
                log "$what (pid $pid): sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
            return 0
        fi
        sleep 0.2
    done
}

stop_mariadb() {
    local pid admin
    if ! pid="$(live_pid "$MARIADB_PID" mariadbd)"; then
        log "mariadb: not running"
        return 0
    fi
    admin="$(command -v mariadb-admin || command -v mysqladmin || true)"
    if [[ -n "$admin" ]] && "$admin" --no-defaults --socket="$MARIADB_SOCK" \
        --connect-timeout=5 -uroot shutdown >/dev/null 2>&1; then
        :
    else
        log "mariadb: admin shutdown failed, sending SIGTERM to pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    wait_gone "$pid" mariadbd
    log "mariadb: stopped"
}

# True when our redis (its dir is ours) answers on port $1.
redis_ours() {
    local dir
    command -v redis-cli >/dev/null 2>&1 || return 1
    dir="$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" config get dir 2>/dev/null | tr -d '\r' | sed -n 2p)" || return 1
    [[ "$dir" == "$REDIS_DIR/$1" ]]
}

stop_redis() {
    local port pid pids=() stopped=0
    # Ask every node first, then wait: each takes a moment to exit.
    for port in "${REDIS_PORTS[@]}"; do
        pid="$(live_pid "$REDIS_DIR/$port/redis.pid" redis-server || true)"
        if redis_ours "$port"; then
            timeout 5 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
        elif [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
        else
            continue
        fi
        if [[ -n "$pid" ]]; then
            pids+=("$pid")
        fi
        stopped=$((stopped + 1))
    done
    for pid in "${pids[@]}"; do
        wait_gone "$pid" redis-server
    done
    if ((stopped > 0)); then
        log "redis: stopped $stopped node(s)"
    else
        log "redis: not running"
    fi
}

main() {
    if [[ ! -d "$BACKENDS_DIR" ]]; then
        log "nothing to stop: $BACKENDS_DIR does not exist"
        return 0
    fi
    # Don't race a concurrent start.sh.
    exec 9>"$BACKENDS_DIR/.lock"
    flock -w 300 9 || die "another start.sh/stop.sh holds $BACKENDS_DIR/.lock"

    stop_mariadb
    stop_redis
    rm -f "$BACKENDS_DIR/env.sh"

    if ((PURGE)); then
        case "$BACKENDS_DIR" in
        / | /tmp | /root | /home | "$HOME") die "refusing to purge $BACKENDS_DIR" ;;
        esac
        rm -rf "$BACKENDS_DIR"
        log "purged $BACKENDS_DIR"
    fi
}

main
