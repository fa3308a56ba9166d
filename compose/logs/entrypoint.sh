#!/bin/sh
# distshop/logs entrypoint: rsyslogd (compose/logs/rsyslog.conf) in the
# foreground of this shell, and every 30 s a sweep that keeps the volume
# bounded (docs/observability.md):
#   * files older than DISTSHOP_LOG_KEEP_HOURS (default 48) are deleted;
#   * while the files add up to more than DISTSHOP_LOG_MAX_MB (default 1024),
#     the oldest is deleted; the newest, which rsyslog writes into, is
#     emptied in place when it alone is over the budget.
# Environment: DISTSHOP_LOG_PORT (UDP port on 127.0.0.1, required).
set -eu

DIR=/var/log/distshop
KEEP_HOURS="${DISTSHOP_LOG_KEEP_HOURS:-48}"
MAX_MB="${DISTSHOP_LOG_MAX_MB:-1024}"
: "${DISTSHOP_LOG_PORT:?DISTSHOP_LOG_PORT is required}"

log() { echo "distshop-logs: $*" >&2; }

# `distshop-logs health` (the health check): rsyslogd runs and the one UDP
# socket on 127.0.0.1:PORT (the host's /proc/net/udp) is ITS socket (its
# inode is among rsyslogd's descriptors). rsyslog binds with SO_REUSEADDR,
# so a second collector on the same DISTSHOP_LOG_PORT (another stack's)
# binds too and the kernel hands the datagrams to one of them: then both
# are unhealthy, saying why.
if [ "${1:-}" = health ]; then
    pid=$(cat /tmp/rsyslogd.pid 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then echo "rsyslogd is not running"; exit 1; fi
    hexport=$(printf '%04X' "$DISTSHOP_LOG_PORT")
    inodes=$(awk -v a="0100007F:$hexport" '$2 == a { print $10 }' /proc/net/udp)
    case "$(echo "$inodes" | grep -c .)" in
    0) echo "nothing listens on udp 127.0.0.1:$DISTSHOP_LOG_PORT"; exit 1 ;;
    1) ;;
    *) echo "udp 127.0.0.1:$DISTSHOP_LOG_PORT is bound by more than one socket (another stack's collector on the same DISTSHOP_LOG_PORT?)"; exit 1 ;;
    esac
    for fd in "/proc/$pid/fd"/*; do
        [ "$(readlink "$fd" 2>/dev/null)" != "socket:[$inodes]" ] || exit 0
    done
    echo "udp 127.0.0.1:$DISTSHOP_LOG_PORT belongs to another process (another stack's collector?)"
    exit 1
fi

sweep() {
    find "$DIR" -maxdepth 1 -name 'distshop-*.log' -mmin +$((KEEP_HOURS * 60)) -print -delete |
        sed 's/^/distshop-logs: deleted (older than '"$KEEP_HOURS"' h) /' >&2 || true
    # names sort by time (distshop-YYYY-MM-DDTHH-M0.log)
    while :; do
        total_kb=$(du -sk "$DIR" | cut -f1)
        [ "$total_kb" -gt $((MAX_MB * 1024)) ] || break
        # shellcheck disable=SC2012 # our own file names: no spaces or newlines
        n=$(ls "$DIR"/distshop-*.log 2>/dev/null | wc -l)
        [ "$n" -gt 0 ] || break
        if [ "$n" = 1 ]; then
            # the newest file alone is over the budget (a long load test fills
            # one 10-minute file at MB/s): emptied in place; rsyslog appends
            # (O_APPEND), so it goes on writing at the new end
            # shellcheck disable=SC2012
            newest=$(ls "$DIR"/distshop-*.log | head -n 1)
            log "emptied (it alone is over ${MAX_MB} MiB) $newest"
            : > "$newest"
            break
        fi
        # shellcheck disable=SC2012
        oldest=$(ls "$DIR"/distshop-*.log | head -n 1)
        log "deleted (over ${MAX_MB} MiB) $oldest"
        rm -f "$oldest"
    done
}

rsyslogd -n -f /etc/rsyslog.d/distshop.conf -i /tmp/rsyslogd.pid &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null; wait "$PID"; exit 0' TERM INT
log "collecting on udp://127.0.0.1:$DISTSHOP_LOG_PORT into $DIR (keep ${KEEP_HOURS} h, at most ${MAX_MB} MiB)"
while kill -0 "$PID" 2>/dev/null; do
    sweep
    # sleep in the background and wait: a TERM is handled at once
    sleep 30 &
    wait $! || true
done
wait "$PID" || exit $?
exit 1
