#!/usr/bin/env bash
# Security probe (tests/security/probe.py) against the EMBEDDED shop: starts the
# shop binary twice on free ports with SQLite and the in-process store, runs
# every check against the first (1 s body timeout, no sign-up limit: the checks
# sign up many accounts) and the sign-up limit against the second
# (SHOP_REGISTER_LIMIT=3), stops both. Through nginx the same probe runs from
# tests/cluster/run.sh.
#
#   tests/security/run.sh [SHOP_BINARY]     default: $CARGO_TARGET_DIR (or target)/debug/shop, built if missing
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/shop}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build -q -p shop)
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME PORT VAR=VALUE...: an embedded shop, waited for
start() {
    local name=$1 port=$2
    shift 2
    env SHOP_LISTEN="127.0.0.1:$port" SHOP_DATABASE_URL="sqlite://$WORK/$name.db?mode=rwc" \
        SHOP_ADMIN_PASSWORD=probe-admin-password RUST_LOG=warn "$@" \
        "$BIN" serve >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "the embedded shop $name did not start:" >&2
    tail -20 "$WORK/$name.log" >&2
    return 1
}

A=$(free_port)
start main "$A" SHOP_REGISTER_LIMIT=0 SHOP_BODY_TIMEOUT_MS=1000
B=$(free_port)
start signups "$B" SHOP_REGISTER_LIMIT=3
rc=0
python3 "$ROOT/tests/security/probe.py" "http://127.0.0.1:$A" --body-timeout 1 || rc=1
python3 "$ROOT/tests/security/probe.py" "http://127.0.0.1:$B" --register-limit 3 --only d6_signups || rc=1
exit $rc
