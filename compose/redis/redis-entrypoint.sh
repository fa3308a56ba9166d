#!/bin/sh
# Start one Redis Cluster node. Before starting, refresh the peer addresses in
# nodes.conf from their hostnames: Docker may hand containers different IPs
# when the whole stack restarts, and a cluster whose nodes all moved cannot
# find itself again from the stale addresses alone.
set -eu
NAME="${REDIS_ANNOUNCE_HOSTNAME:-$(hostname)}"
CONF=/data/nodes.conf
WAIT="${REDIS_RESOLVE_WAIT_SECONDS:-20}"

log() { echo "redis-entrypoint[$NAME] $*" >&2; }

if [ -s "$CONF" ]; then
    deadline=$(( $(date +%s) + WAIT ))
    while :; do
        missing=0
        : > "$CONF.new"
        while IFS= read -r line; do
            case "$line" in
            vars*|"") printf '%s\n' "$line" >> "$CONF.new"; continue ;;
            esac
            # <id> <ip:port@cport,hostname> <flags> ...
            addr=$(printf '%s' "$line" | cut -d' ' -f2)
            host=$(printf '%s' "$addr" | cut -s -d, -f2)
            ipport=${addr%%,*}
            port=${ipport#*:}
            newip=""
            if [ -n "$host" ] && [ "$host" != "$NAME" ]; then
                newip=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR==1{print $1}') || true
                [ -n "$newip" ] || missing=$((missing + 1))
            fi
            if [ -n "$newip" ]; then
                rest=${addr#"$ipport"}
                printf '%s\n' "$line" | awk -v a="$newip:$port$rest" '{ $2 = a; print }' >> "$CONF.new"
            else
                printf '%s\n' "$line" >> "$CONF.new"
            fi
        done < "$CONF"
        if [ "$missing" -eq 0 ] || [ "$(date +%s)" -ge "$deadline" ]; then
            break
        fi
        sleep 1
    done
    if ! cmp -s "$CONF" "$CONF.new"; then
        log "refreshed peer addresses in nodes.conf ($missing peer(s) not resolvable)"
        mv "$CONF.new" "$CONF"
    else
        rm -f "$CONF.new"
    fi
fi

exec redis-server /etc/redis/distshop.conf --cluster-announce-hostname "$NAME" "$@"
