#!/bin/bash
# The stack on Docker Swarm (compose/stack.yml), on a single-node swarm.
#
#   tests/swarm/run.sh [--keep]
#
# 1. joins nothing: if this Docker engine is not in a swarm, `docker swarm
#    init` on 127.0.0.1 (left again at the end); images come from
#    compose/offline-prepare.sh (run it first, or let .ci/run do it);
# 2. `docker stack deploy` of compose/stack.yml as stack $DISTSHOP_SWARM_STACK
#    (default distshop-swarm) with nginx published on port
#    $DISTSHOP_SWARM_HTTP_PORT (default 18380; HTTPS on that + 2) and no
#    registration limit (the simulator registers from one address); waits
#    until the shop answers a public page through nginx with all its replicas
#    running (/readyz is internal: nginx answers 404 for it);
# 3. checks, through 127.0.0.1 only:
#    - the shopper journey (distshop-sim journey): register, log in,
#      cart, checkout with an Idempotency-Key and its replay, orders; the
#      session valid on every replica;
#    - requests spread over the 3 shop tasks (X-Served-By: shop-<slot>);
#    - HTTPS answers with the certificate the nginx task made;
#    - the simulator (distshop-sim) with a few shoppers checking every answer
#      while `docker service update --force` rolls the shop task by task
#      (update_config: start-first): zero failed requests, no lost session;
# 4. removes the stack, its volumes and (if it made it) the swarm, also when a
#    check fails. --keep leaves everything running.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=0
for a in "$@"; do
    case "$a" in
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
    esac
done
S="${DISTSHOP_SWARM_STACK:-distshop-swarm}"
PORT="${DISTSHOP_SWARM_HTTP_PORT:-18380}"
HTTPS_PORT="${DISTSHOP_SWARM_HTTPS_PORT:-$((PORT + 2))}"
BASE="http://127.0.0.1:$PORT"
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
REPORT="${DISTSHOP_SWARM_REPORT:-$ROOT/reports/swarm}"
PASS=0 FAIL=0 MADE_SWARM=0 NODE=""
ADDED_LABELS=()

log() { echo "[$(date -u +%H:%M:%S)] swarm: $*"; }
ok() { PASS=$((PASS + 1)); log "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); log "FAIL: $*"; }

SIM="${DISTSHOP_SIM:-}"
for c in "$ROOT/target/bookworm/release/distshop-sim" "${CARGO_TARGET_DIR:-$ROOT/target}/release/distshop-sim" "$ROOT/target/release/distshop-sim"; do
    [ -z "$SIM" ] && [ -x "$c" ] && SIM=$c
done
[ -n "$SIM" ] || { log "build the simulator first: bash compose/offline-prepare.sh (or cargo build --release -p simulator)"; exit 2; }
for img in distshop/shop distshop/nginx distshop/db distshop/galera distshop/redis distshop/manager; do
    docker image inspect "$img:latest" >/dev/null 2>&1 ||
        { log "image $img:latest missing: run compose/offline-prepare.sh"; exit 2; }
done
# this install's secrets (compose/init_env.sh makes them on a fresh clone)
compose_env_ready "$ROOT" || exit 2

cleanup() {
    local rc=$?
    if [ "$KEEP" = 1 ]; then
        log "left running: docker stack rm $S (then its volumes: docker volume ls -q --filter label=com.docker.stack.namespace=$S)"
        return
    fi
    log "removing stack $S"
    docker stack rm "$S" >/dev/null 2>&1 || true
    # tasks and networks go away asynchronously; volumes can only go after
    for _ in $(seq 1 60); do
        [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$S")" ] &&
            [ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$S")" ] && break
        sleep 1
    done
    docker volume ls -q --filter "label=com.docker.stack.namespace=$S" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
    if [ "$MADE_SWARM" = 0 ] && [ ${#ADDED_LABELS[@]} -gt 0 ]; then
        local args=()
        for l in "${ADDED_LABELS[@]}"; do args+=(--label-rm "$l"); done
        docker node update "${args[@]}" "$NODE" >/dev/null 2>&1 || true
    fi
    if [ "$MADE_SWARM" = 1 ]; then
        log "leaving the swarm this test made"
        docker swarm leave --force >/dev/null 2>&1 || true
    fi
    return $rc
}
trap cleanup EXIT

# --------------------------------------------------------------------- swarm
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != active ]; then
    log "docker swarm init on 127.0.0.1 (a single-node swarm, left at the end)"
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
    MADE_SWARM=1
fi

# ------------------------------------------------ placement labels (one node)
# compose/stack.yml pins each Galera and Redis node to the machine labelled
# for it; on one machine that machine carries every label. Labels this test
# added are removed again at the end (unless it made the swarm: then it goes).
NODE=$(docker info --format '{{.Swarm.NodeID}}')
for l in galera-1 galera-2 galera-3 redis-1 redis-2 redis-3 redis-4 redis-5 redis-6; do
    if [ "$(docker node inspect -f "{{index .Spec.Labels \"distshop.$l\"}}" "$NODE")" != true ]; then
        ADDED_LABELS+=("distshop.$l")
    fi
done
if [ ${#ADDED_LABELS[@]} -gt 0 ]; then
    args=()
    for l in "${ADDED_LABELS[@]}"; do args+=(--label-add "$l=true"); done
    log "labelling node $NODE: ${ADDED_LABELS[*]}"
    docker node update "${args[@]}" "$NODE" >/dev/null
fi

# ------------------------------------------------------------------- deploy
set -a
# shellcheck disable=SC1091
. "$ROOT/compose/.env"
set +a
# the simulator registers every shopper from one address: no registration limit
export DISTSHOP_HTTP_PORT="$PORT" DISTSHOP_HTTPS_PORT="$HTTPS_PORT" DISTSHOP_SHOP_REPLICAS=3 DISTSHOP_REGISTER_LIMIT=0 DISTSHOP_HASH_PER_CLIENT=1000
t0=$SECONDS
log "docker stack deploy -c compose/stack.yml $S (nginx on port $PORT)"
docker stack deploy --resolve-image never --prune -c "$ROOT/compose/stack.yml" "$S" 2>&1 |
    grep -v '^Creating\|^Updating' || true

shop_running() { # tasks of the shop service that are running (and healthy)
    docker service ps "${S}_shop" --filter desired-state=running --format '{{.CurrentState}}' 2>/dev/null |
        grep -c '^Running' || true
}
# a public page that needs a shop task (the replicas' /readyz is internal)
shop_answers() { curl -fsS --max-time 3 -o /dev/null "$BASE/api/categories" 2>/dev/null; }
ready=0
while [ $((SECONDS - t0)) -lt 480 ]; do
    if [ "$(shop_running)" -ge 3 ] && shop_answers; then
        ready=1
        break
    fi
    sleep 2
done
if [ "$ready" = 1 ]; then
    ok "stack deployed; shop ready through nginx with 3 tasks after $((SECONDS - t0)) s"
else
    bad "stack not ready after $((SECONDS - t0)) s"
    docker stack ps "$S" --no-trunc --format '{{.Name}} {{.CurrentState}} {{.Error}}' | head -40
    exit 1
fi
docker stack services "$S" --format '{{.Name}} {{.Replicas}}' | sort | sed 's/^/  /'

# ------------------------------------------------------- Prometheus (issue 13)
# not published under Swarm (it would listen on every interface, and its API
# has no login): asked from inside its task. It finds the shop as tasks.shop.
prom_targets_ok() { # N: N shop targets, galera x3, redis x6, nginx, haproxy, manager, all up
    local c
    c=$(docker ps -q --filter "label=com.docker.swarm.service.name=${S}_prometheus" | head -n 1)
    [ -n "$c" ] || return 1
    docker exec "$c" curl -fsS --max-time 5 'http://127.0.0.1:9090/api/v1/targets?state=active' 2>/dev/null |
        python3 -c '
import collections, json, sys
ts = json.load(sys.stdin)["data"]["activeTargets"]
n = collections.Counter(t["labels"]["job"] for t in ts)
up = collections.Counter(t["labels"]["job"] for t in ts if t["health"] == "up")
want = {"shop": int(sys.argv[1]), "galera": 3, "redis": 6, "nginx": 1, "haproxy": 1, "manager": 1}
sys.exit(0 if all(n[j] == k and up[j] == k for j, k in want.items()) else 1)' "$1"
}
t0=$SECONDS
until prom_targets_ok 3 || [ $((SECONDS - t0)) -ge 90 ]; do sleep 3; done
if prom_targets_ok 3; then
    ok "Prometheus (tasks.shop): 3 shop targets and every other job up after $((SECONDS - t0)) s"
else
    bad "Prometheus targets not all up (3 shop tasks) after 90 s"
fi

# ------------------------------------------------------------------ journey
if out=$("$SIM" journey "$BASE" 2>&1); then
    ok "shopper journey through the swarm: $(tail -n1 <<< "$out" | cut -c1-200)"
else
    bad "shopper journey: $out"
fi

# spread: which tasks answer. X-Served-By is the task's SHOP_REPLICA_NAME,
# shop-{{.Task.Slot}} in stack.yml: one name per slot, so 3 tasks -> 3 names
# (a task Swarm replaces keeps its slot, and so its name). GET /api/me without
# a session: never cached, answered (401) by a task itself
declare -A seen=()
for _ in $(seq 1 60); do
    # (a curl that fails or times out is no name, not the end of the run: pipefail)
    h=$(curl -sS --max-time 3 -D - -o /dev/null "$BASE/api/me" 2>/dev/null | tr -d '\r' |
        sed -n 's/^[Xx]-[Ss]erved-[Bb]y: //p') || true
    [ -n "$h" ] && seen[$h]=$((${seen[$h]:-0} + 1))
done
if [ "${#seen[@]}" -ge 3 ]; then
    ok "requests spread over ${#seen[@]} shop tasks: $(for k in "${!seen[@]}"; do printf '%s=%s ' "$k" "${seen[$k]}"; done)"
else
    bad "requests reached ${#seen[@]} shop task(s) only: ${!seen[*]}"
fi
odd=""
for k in "${!seen[@]}"; do [[ "$k" =~ ^shop-[0-9]+$ ]] || odd+=" $k"; done
if [ "${#seen[@]}" -gt 0 ] && [ -z "$odd" ]; then
    ok "every task names itself shop-<slot> in X-Served-By"
else
    bad "X-Served-By names that are not shop-<slot>:${odd:- none seen}"
fi

# HTTPS on the node's published port, verified against the certificate the
# nginx task made in its volume; the internal endpoints are not reachable
nc=$(docker ps -q --filter "label=com.docker.swarm.service.name=${S}_nginx" | sed -n 1p)
ca=$(mktemp)
docker exec "$nc" cat /etc/nginx/tls/tls.crt > "$ca" 2>/dev/null || true
code=$(curl -sS --max-time 5 --cacert "$ca" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HTTPS_PORT/api/categories" 2>&1) || true
if [ "$code" = 200 ]; then
    ok "HTTPS on port $HTTPS_PORT answers 200, certificate verified"
else
    bad "HTTPS on port $HTTPS_PORT: $code"
fi
code=$(curl -sS --max-time 5 --cacert "$ca" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HTTPS_PORT/metrics" 2>&1) || true
code2=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$BASE/readyz" 2>&1) || true
if [ "$code" = 404 ] && [ "$code2" = 404 ]; then
    ok "/metrics over HTTPS and /readyz over HTTP answer 404 through nginx"
else
    bad "internal endpoints through nginx: /metrics $code, /readyz $code2 (want 404)"
fi
rm -f "$ca"

# ------------------------------------- rolling update under a checked load
mkdir -p "$REPORT"
dir="$REPORT/rolling-update-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$dir"
log "simulator: 8 shoppers for 75 s; docker service update --force ${S}_shop at 10 s"
(
    sleep 10
    "$SIM" mark --report "$dir" --source swarm "docker service update --force ${S}_shop (start-first)" >/dev/null 2>&1 || true
    u0=$SECONDS
    if docker service update --force --detach=false "${S}_shop" >/dev/null 2>&1; then
        "$SIM" mark --report "$dir" --source swarm "rolling update done ($((SECONDS - u0)) s)" >/dev/null 2>&1 || true
        echo "update-ok $((SECONDS - u0))"
    else
        echo "update-failed"
    fi
) > "$dir/update.log" 2>&1 &
upid=$!
rc=0
"$SIM" --base-url "$BASE" --shoppers 8 --duration 75s --max-requests 20000 --seed 11 \
    --report "$dir" --quiet > "$dir/sim.out" 2>&1 || rc=$?
wait "$upid" || true
tail -n 12 "$dir/sim.out" | sed 's/^/  sim: /'
read -r upd secs < <(tail -n1 "$dir/update.log") || true
failed=$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
e = s["errors"]
print(e["network"] + e["timeout"] + e["5xx"] + e["4xx-unexpected"], s["requests"], s["violations"]["lost-session"],
      s["verdict"]["pass"])' "$dir/summary.json" 2>/dev/null || echo "? ? ? False")
read -r nfail nreq nlost verdict <<< "$failed"
if [ "$upd" = update-ok ]; then
    ok "rolling update of the shop (3 tasks, start-first) took ${secs} s"
else
    bad "docker service update did not converge (see $dir/update.log)"
fi
if [ "$rc" = 0 ] && [ "$nfail" = 0 ] && [ "$nlost" = 0 ] && [ "$verdict" = True ]; then
    ok "rolling update under load: 0 failed of $nreq requests, 0 lost sessions, every answer checked (report $dir)"
else
    bad "rolling update under load: $nfail failed of $nreq requests, $nlost lost sessions, simulator exit $rc (report $dir)"
fi

# ------------------------------------------ heartbeat manager (global service)
# one manager per node watches that node's shop tasks; a frozen task is
# killed and Swarm starts a new one in its place
mc=$(docker ps -q --filter "label=com.docker.swarm.service.name=${S}_manager" | sed -n 1p)
mstate() { docker exec "$mc" curl -fsS --max-time 2 http://127.0.0.1:9091/state 2>/dev/null; }
alive=0
for _ in $(seq 1 30); do
    alive=$(mstate | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["replicas"] if r["verdict"] == "alive"))' 2>/dev/null || echo 0)
    [ "$alive" -ge 3 ] && break
    sleep 1
done
if [ -n "$mc" ] && [ "$alive" -ge 3 ]; then
    ok "the manager on this node beats with $alive shop tasks"
else
    bad "the manager sees $alive live shop tasks (container ${mc:-none})"
fi
victim=$(docker ps -q --filter "label=com.docker.swarm.service.name=${S}_shop" | sed -n 1p)
docker pause "$victim" >/dev/null
t0=$(date +%s.%N)
freed=""
for _ in $(seq 1 150); do
    if [ "$(docker inspect -f '{{.State.Status}}' "$victim" 2>/dev/null || echo gone)" != paused ]; then
        freed=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
        break
    fi
    sleep 0.1
done
back=0
for _ in $(seq 1 60); do
    [ "$(shop_running)" -ge 3 ] && shop_answers && { back=1; break; }
    sleep 1
done
if [ -n "$freed" ] && python3 -c "import sys; sys.exit(0 if float('$freed') <= 15 else 1)" && [ "$back" = 1 ]; then
    ok "a paused shop task was killed by the manager ${freed} s after the pause; Swarm runs 3 again"
else
    bad "a paused shop task: freed after ${freed:-never} s, 3 tasks again: $back"
    docker unpause "$victim" >/dev/null 2>&1 || true
fi

log "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
