#!/bin/sh
# distshop-upstreams: keeps nginx's `shop` upstream equal to the replicas
# Docker's DNS knows, so nginx can hold keepalive connections to them.
#
# Why: open-source nginx 1.22 re-resolves a name per request only when
# proxy_pass uses a variable, and then it cannot keep upstream connections
# alive: every request paid a TCP connect to a replica (/healthz through nginx
# ran at 1/5 of one replica's rate). An `upstream` block with `keepalive`
# resolves its servers once, at (re)load; this loop looks the service up every
# DISTSHOP_UPSTREAM_POLL seconds (default 1) and reloads nginx gracefully when
# the set of addresses changed. `--scale shop=N` is followed within about a
# second plus the reload; no Docker socket needed (only the manager of issue
# 10 may hold that).
#
#   distshop-upstreams once    write the upstream file (at container start)
#   distshop-upstreams watch   loop: rewrite + `nginx -s reload` on change
set -u

SERVICE=${DISTSHOP_UPSTREAM_SERVICE:-shop}
PORT=${DISTSHOP_UPSTREAM_PORT:-8080}
POLL=${DISTSHOP_UPSTREAM_POLL:-1}
CONF=/etc/nginx/distshop/upstream.conf

log() { printf '{"time":"%s","level":"INFO","source":"distshop-upstreams","msg":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

addresses() {
    getent ahostsv4 "$SERVICE" 2>/dev/null | awk '{print $1}' | sort -u
}

# render ADDRESSES: the upstream block for them
render() {
    echo "# written by distshop-upstreams from the DNS name '$SERVICE'; do not edit"
    echo "upstream shop {"
    echo "    zone shop 128k;"
    if [ -z "$1" ]; then
        # no replica resolvable right now: a server that refuses (nginx answers 502)
        echo "    server 127.0.0.1:9;"
    else
        for a in $1; do
            # one failed attempt takes a replica out for 2 s (it is retried after)
            echo "    server $a:$PORT max_fails=1 fail_timeout=2s;"
        done
    fi
    # idle connections kept per worker; closed before the shop's own 5 s
    # keep-alive, so nginx never reuses one the replica is closing
    echo "    keepalive 64;"
    echo "    keepalive_timeout 4s;"
    echo "    keepalive_requests 100000;"
    echo "}"
}

write_once() {
    mkdir -p "$(dirname "$CONF")"
    render "$(addresses)" > "$CONF"
}

watch() {
    applied=$(cat "$CONF" 2>/dev/null || true)
    while :; do
        sleep "$POLL"
        want=$(render "$(addresses)")
        [ "$want" = "$applied" ] && continue
        printf '%s\n' "$want" > "$CONF.new" && mv "$CONF.new" "$CONF"
        if nginx -s reload 2>/dev/null; then
            applied=$want
            log "replicas now: $(addresses | paste -sd, -) (nginx reloaded)"
        else
            log "nginx reload failed; will retry"
        fi
    done
}

case "${1:-}" in
once) write_once ;;
watch) watch ;;
*)
    echo "usage: distshop-upstreams once|watch" >&2
    exit 2
    ;;
esac
