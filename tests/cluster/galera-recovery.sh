#!/bin/bash
# Galera-only recovery test: runs the three galera services of
# compose/docker-compose.yml under a throw-away project and checks that the
# cluster comes back by itself, with every committed row, after
#   1. a clean stop of all three nodes (docker-compose stop / start),
#   2. kill -9 of all three nodes,
#   3. a divergent history: galera-1 killed, more writes on galera-2/3, then
#      galera-2/3 stopped, then all three started together (galera-1 is the
#      LEAST advanced and must not bootstrap),
#   4. one node killed and restarted alone while the others serve writes.
# Needs the image distshop/galera:latest (compose/offline-prepare.sh).
# Usage: tests/cluster/galera-recovery.sh     (exit 0 = all passed)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COMPOSE_FILE="$ROOT/compose/docker-compose.yml"
P="${DISTSHOP_TEST_PROJECT:-distshop-galera-$$}"
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
compose_select || exit 2
compose_env_ready "$ROOT" || exit 2 # the Galera passwords come from compose/.env
DC=("${COMPOSE[@]}" -p "$P" -f "$COMPOSE_FILE")
SYNC_TIMEOUT="${SYNC_TIMEOUT:-240}"
PASS=0 FAIL=0

log() { echo "[$(date -u +%H:%M:%S)] $*"; }
ok() { PASS=$((PASS + 1)); log "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); log "FAIL: $*"; }

cleanup() {
    local rc=$?
    if [ "$FAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
        for n in 1 2 3; do
            echo "---- logs of galera-$n (last 40 lines)"
            "${DC[@]}" logs --no-color --tail 40 "galera-$n" 2>/dev/null || true
        done
    fi
    "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

cid() { "${DC[@]}" ps -q "$1"; }
sql() { # sql NODE STATEMENT
    docker exec "$(cid "$1")" mariadb -N -B distshop -e "$2"
}

# all three Synced+Primary in one component of size 3; prints the seconds taken
wait_synced() {
    local t0=$SECONDS n ok
    while [ $((SECONDS - t0)) -lt "$SYNC_TIMEOUT" ]; do
        ok=0
        for n in 1 2 3; do
            c=$(cid "galera-$n") || continue
            [ -n "$c" ] || continue
            out=$(docker exec "$c" curl -fsS --max-time 2 http://127.0.0.1:9200/ 2>/dev/null || true)
            grep -q 'wsrep_cluster_size=3' <<< "$out" && ok=$((ok + 1))
        done
        if [ "$ok" = 3 ]; then
            SYNC_SECONDS=$((SECONDS - t0))
            return 0
        fi
        sleep 1
    done
    SYNC_SECONDS=$((SECONDS - t0))
    return 1
}

expect_rows() { # expect_rows COUNT LABEL
    local n c
    for n in 1 2 3; do
        c=$(sql "galera-$n" "SELECT COUNT(*) FROM t" 2>&1) || c="error: $c"
        if [ "$c" = "$1" ]; then ok "$2: galera-$n has all $1 rows"; else bad "$2: galera-$n has '$c' rows, want $1"; fi
    done
}

node_state() { # prints seqno/safe/gvwstate of a STOPPED node's volume
    docker run --rm -v "${P}_galera-$1:/d" --entrypoint sh distshop/galera:latest -c \
        'printf "seqno=%s safe=%s gvwstate=%s" "$(sed -n "s/^seqno:[[:space:]]*//p" /d/grastate.dat)" "$(sed -n "s/^safe_to_bootstrap:[[:space:]]*//p" /d/grastate.dat)" "$([ -f /d/gvwstate.dat ] && echo yes || echo no)"'
}

log "project $P: starting galera-1..3 from empty volumes"
t0=$SECONDS
"${DC[@]}" up -d galera-1 galera-2 galera-3 >/dev/null 2>&1
if wait_synced; then ok "cold bootstrap: 3 nodes Synced+Primary after $((SECONDS - t0))s"; else bad "cold bootstrap: not synced after ${SYNC_SECONDS}s"; exit 1; fi
users=$(sql galera-3 "SELECT GROUP_CONCAT(CONCAT(user,'@',host) ORDER BY user,host) FROM mysql.user WHERE user IN ('shop','health','sst')")
[ "$users" = "health@127.0.0.1,health@localhost,shop@%,sst@localhost" ] && ok "users replicated: $users" || bad "users: $users"

sql galera-2 "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB"
for i in $(seq 1 20); do sql "galera-$((i % 3 + 1))" "INSERT INTO t (v) VALUES ('row-$i')"; done
expect_rows 20 "replication"

# ---------------------------------------------------------------- scenario 1
log "scenario 1: clean stop of all three, then start"
"${DC[@]}" stop galera-1 galera-2 galera-3 >/dev/null 2>&1
log "  after stop: g1 $(node_state 1); g2 $(node_state 2); g3 $(node_state 3)"
t0=$SECONDS
"${DC[@]}" start galera-1 galera-2 galera-3 >/dev/null 2>&1
if wait_synced; then ok "clean stop/start: synced after $((SECONDS - t0))s"; else bad "clean stop/start: not synced after ${SYNC_SECONDS}s"; fi
expect_rows 20 "after clean restart"
for i in $(seq 21 30); do sql "galera-$((i % 3 + 1))" "INSERT INTO t (v) VALUES ('row-$i')"; done

# ---------------------------------------------------------------- scenario 2
log "scenario 2: kill -9 all three, then start"
docker kill -s KILL "$(cid galera-1)" "$(cid galera-2)" "$(cid galera-3)" >/dev/null
log "  after kill: g1 $(node_state 1); g2 $(node_state 2); g3 $(node_state 3)"
t0=$SECONDS
"${DC[@]}" start galera-1 galera-2 galera-3 >/dev/null 2>&1
if wait_synced; then ok "kill -9 all/start: synced after $((SECONDS - t0))s"; else bad "kill -9 all/start: not synced after ${SYNC_SECONDS}s"; fi
expect_rows 30 "after kill -9 of all"

# ---------------------------------------------------------------- scenario 3
log "scenario 3: galera-1 killed, writes continue on 2 and 3, then 2 and 3 stop; all start together"
docker kill -s KILL "$(cid galera-1)" >/dev/null
sleep 5 # let galera-2/3 notice (evs/peer timeouts) and form a 2-node primary
for i in $(seq 31 45); do sql "galera-$((i % 2 + 2))" "INSERT INTO t (v) VALUES ('row-$i')"; done
"${DC[@]}" stop galera-2 >/dev/null 2>&1
"${DC[@]}" stop galera-3 >/dev/null 2>&1
log "  stopped: g1 $(node_state 1); g2 $(node_state 2); g3 $(node_state 3)"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$SECONDS
"${DC[@]}" start galera-1 galera-2 galera-3 >/dev/null 2>&1
if wait_synced; then ok "divergent restart: synced after $((SECONDS - t0))s"; else bad "divergent restart: not synced after ${SYNC_SECONDS}s"; fi
expect_rows 45 "after divergent restart"
who=""
for n in 1 2 3; do
    # capture first: `docker logs | grep -q` fails under pipefail (SIGPIPE)
    out=$(docker logs --since "$since" "$(cid "galera-$n")" 2>&1)
    if grep -q "bootstrapping the cluster from this node" <<< "$out"; then
        who="$who galera-$n"
    fi
done
# galera-3 left last (safe_to_bootstrap=1, highest seqno): it alone may bootstrap
if [ "$who" = " galera-3" ]; then ok "only the most advanced node (galera-3) bootstrapped"; else bad "bootstrapped:${who:- none}, want galera-3 only"; fi

# ---------------------------------------------------------------- scenario 4
log "scenario 4: one node killed and restarted while the others take writes"
docker kill -s KILL "$(cid galera-3)" >/dev/null
sleep 5
for i in $(seq 46 55); do sql "galera-$((i % 2 + 1))" "INSERT INTO t (v) VALUES ('row-$i')"; done
t0=$SECONDS
"${DC[@]}" start galera-3 >/dev/null 2>&1
if wait_synced; then ok "single node rejoin: synced after $((SECONDS - t0))s"; else bad "single node rejoin: not synced after ${SYNC_SECONDS}s"; fi
expect_rows 55 "after single node rejoin"

echo
echo "galera-recovery: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
