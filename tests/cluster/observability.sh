#!/bin/bash
# Checks of the monitoring and the central logs (issue 13; docs/observability.md)
# against a RUNNING compose stack, e.g. the cluster suite's (tests/cluster/run.sh):
#
#   tests/cluster/observability.sh [-p PROJECT] [--no-scale] [--no-restart] all
#   tests/cluster/observability.sh [-p PROJECT] targets N
#
# all      every check below, with N = the shop replicas running now;
# targets  only "Prometheus scrapes N shop replicas and every other target is
#          up" (within 60 s): call it after a `--scale shop=N`.
# Checks:
#   - Prometheus ready on 127.0.0.1:$DISTSHOP_PROMETHEUS_PORT;
#   - its targets: the shop (exactly as many as replicas run), galera x3,
#     redis x6, nginx, haproxy, manager, all up;
#   - (unless --no-scale) `--scale shop=N+1`: the shop targets follow within
#     30 s, and back to N;
#   - the recording rules (request rate, error rate, p99; per replica and
#     overall) return values once requests flow;
#   - a request sent through nginx with a chosen X-Request-Id is found by
#     compose/logs.sh: nginx's line and the shop's, in time order;
#   - (unless --no-restart) a restart of the log collector keeps the lines
#     written before it, and lines sent after it arrive again;
#   - nginx's status listener is not reachable through the published port.
# Environment (as tests/cluster/run.sh sets it): the project is -p, else
# DISTSHOP_TEST_PROJECT, else DISTSHOP_PROJECT; DISTSHOP_HTTP_PORT (else
# DISTSHOP_TEST_HTTP_PORT, else 28080) is nginx; DISTSHOP_PROMETHEUS_PORT
# defaults to that + 3; DISTSHOP_COMPOSE as in tests/lib/compose.sh.
# Prints PASS:/FAIL: lines like the cluster suite and "observability: N
# passed, M failed"; exits 1 when a check failed, 2 on a usage error.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"

usage() { echo "usage: $0 [-p PROJECT] [--no-scale] [--no-restart] all | targets N" >&2; exit 2; }
P="${DISTSHOP_TEST_PROJECT:-${DISTSHOP_PROJECT:-}}"
SCALE=1 RESTART=1 MODE="" WANT=""
while [ $# -gt 0 ]; do
    case "$1" in
    -p) [ $# -ge 2 ] || usage; P=$2; shift 2 ;;
    --no-scale) SCALE=0; shift ;;
    --no-restart) RESTART=0; shift ;;
    all) MODE=all; shift ;;
    targets) [ $# -ge 2 ] || usage; MODE=targets WANT=$2; shift 2 ;;
    *) usage ;;
    esac
done
if [ -z "$MODE" ] || [ -z "$P" ]; then usage; fi
[ -z "$WANT" ] || [[ "$WANT" =~ ^[1-9][0-9]*$ ]] || usage

PORT="${DISTSHOP_HTTP_PORT:-${DISTSHOP_TEST_HTTP_PORT:-28080}}"
PROM_PORT="${DISTSHOP_PROMETHEUS_PORT:-$((PORT + 3))}"
BASE="http://127.0.0.1:$PORT"
PROM="http://127.0.0.1:$PROM_PORT"
compose_select || exit 2
DC=("${COMPOSE[@]}" -p "$P" -f "$ROOT/compose/docker-compose.yml")
PASS=0 FAIL=0

log() { echo "[$(date -u +%H:%M:%S)] $*"; }
ok() { PASS=$((PASS + 1)); log "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); log "FAIL: $*"; }
finish() {
    echo "observability: $PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
}

# promq EXPR: the instant query's result as "value labels" lines (no output
# when Prometheus does not answer or the result is empty)
promq() {
    curl -fsS --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d["data"]["result"]:
    print(r["value"][1], json.dumps(r["metric"], sort_keys=True, separators=(",", ":")))' 2>/dev/null || true
}

# targets_summary: one line per job: "job count up" (active targets), then
# "down job instance error" per target not up
targets_summary() {
    curl -fsS --max-time 5 "$PROM/api/v1/targets?state=active" 2>/dev/null | python3 -c '
import json, sys, collections
d = json.load(sys.stdin)
jobs = collections.defaultdict(lambda: [0, 0])
bad = []
for t in d["data"]["activeTargets"]:
    j = t["labels"]["job"]
    jobs[j][0] += 1
    if t["health"] == "up":
        jobs[j][1] += 1
    else:
        bad.append("down %s %s %s" % (j, t["labels"].get("instance", "?"), t.get("lastError") or t["health"]))
for j, (n, up) in sorted(jobs.items()):
    print(j, n, up)
for b in bad:
    print(b)' 2>/dev/null || true
}

running_shops() { "${DC[@]}" ps -q shop 2>/dev/null | grep -c . || true; }

# check_targets N DEADLINE_S: every target up, exactly N shop targets
check_targets() {
    local want=$1 deadline=$((SECONDS + $2)) s expect job n up missing
    # job -> expected count (the manager: at least one)
    while :; do
        s=$(targets_summary)
        missing=""
        for expect in "shop $want" "galera 3" "redis 6" "nginx 1" "haproxy 1" "manager 1" "prometheus 1"; do
            job=${expect% *} n=${expect#* }
            up=$(awk -v j="$job" '$1 == j { print $2 " " $3 }' <<< "$s")
            [ "$up" = "$n $n" ] || missing+=" $job: want $n targets all up, have ${up:-0 0} (targets, up);"
        done
        if [ -z "$missing" ]; then
            ok "Prometheus: $want shop targets and galera x3, redis x6, nginx, haproxy, manager all up"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            bad "Prometheus targets after $2 s:${missing%;}"
            grep '^down ' <<< "$s" | sed 's/^/    /' || true
            return 1
        fi
        sleep 2
    done
}

# wait_shop_targets N DEADLINE_S: the number of shop targets Prometheus has
wait_shop_targets() {
    local want=$1 deadline=$((SECONDS + $2)) t0=$SECONDS have
    while :; do
        have=$(targets_summary | awk '$1 == "shop" { print $2 }')
        if [ "${have:-0}" = "$want" ]; then
            ok "Prometheus follows the scale: $want shop targets $((SECONDS - t0)) s after the replicas were running"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            bad "Prometheus has ${have:-0} shop targets, not $want, $2 s after the scale"
            return 1
        fi
        sleep 1
    done
}

# wait_shops N: N shop containers running and healthy (for the scale check)
wait_shops() {
    local want=$1 deadline=$((SECONDS + 120)) c healthy
    while [ $SECONDS -lt $deadline ]; do
        healthy=0
        for c in $("${DC[@]}" ps -q shop 2>/dev/null); do
            [ "$(docker inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null)" = healthy ] && healthy=$((healthy + 1))
        done
        [ "$healthy" = "$want" ] && [ "$(running_shops)" = "$want" ] && return 0
        sleep 1
    done
    return 1
}

# logs_of ID: compose/logs.sh's JSON lines for request ID (nothing if none)
logs_of() { "$ROOT/compose/logs.sh" -p "$P" --json "$1" 2>/dev/null || true; }

# check_request_logs ID LABEL: nginx's line and a shop line for ID, in time
# order, within 30 s
check_request_logs() {
    local id=$1 label=$2 deadline=$((SECONDS + 30)) out verdict
    while :; do
        out=$(logs_of "$id")
        verdict=$(P="$P" python3 -c '
import json, os, re, sys
p = re.escape(os.environ["P"])
lines = [json.loads(l) for l in sys.stdin if l.strip()]
svc = lambda l: re.sub("^" + p + "[-_]", "", l["service"])
nginx = [l for l in lines if re.match(r"nginx[-_]\d+$", svc(l))]
shop = [l for l in lines if re.match(r"shop[-_]\d+$", svc(l))]
ts = [l["ts"] for l in lines]
if not nginx or not shop:
    print("missing: %d nginx, %d shop lines of %d" % (len(nginx), len(shop), len(lines)))
elif ts != sorted(ts):
    print("not in time order: %s" % ts)
elif max(l["ts"] for l in shop) > max(l["ts"] for l in nginx):
    # the shop logs before it answers, nginx after the answer
    print("the shop line is later than nginx access line")
else:
    print("ok %d lines: %s" % (len(lines), ", ".join(svc(l) for l in lines)))' <<< "$out")
        if [[ "$verdict" == ok* ]]; then
            ok "$label: compose/logs.sh $id: ${verdict#ok }"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            bad "$label: compose/logs.sh $id after 30 s: $verdict"
            return 1
        fi
        sleep 1
    done
}

# send_with_id ID: one request through nginx that a replica answers (GET
# /api/me without a session: 401, never cached); the answer echoes the id
send_with_id() {
    curl -sS --max-time 10 -D - -o /dev/null -H "X-Request-Id: $1" "$BASE/api/me" 2>/dev/null |
        grep -qi "^X-Request-Id: $1"
}

# ------------------------------------------------------------------ checks
check_ready() {
    local deadline=$((SECONDS + 60))
    until curl -fsS --max-time 3 -o /dev/null "$PROM/-/ready" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            bad "Prometheus not ready on $PROM within 60 s"
            return 1
        fi
        sleep 1
    done
    ok "Prometheus ready on $PROM"
}

check_scale() {
    local n=$1 up=$(($1 + 1))
    log "scaling shop $n -> $up (Prometheus must follow by DNS)"
    "${DC[@]}" up -d --no-recreate --no-deps --scale "shop=$up" shop >/dev/null 2>&1 || true
    if wait_shops "$up"; then
        wait_shop_targets "$up" 30 || true
    else
        bad "$up shop replicas not healthy after --scale shop=$up"
    fi
    log "scaling shop $up -> $n"
    "${DC[@]}" up -d --no-recreate --no-deps --scale "shop=$n" shop >/dev/null 2>&1 || true
    if wait_shops "$n"; then
        wait_shop_targets "$n" 30 || true
    else
        bad "$n shop replicas not healthy after --scale shop=$n"
    fi
}

check_rules() {
    local n=$1 deadline=$((SECONDS + 60)) i per overall p99 err ratio r1m
    while :; do
        # requests the replicas answer themselves (never cached by nginx)
        for i in 1 2 3 4 5 6 7 8 9 10; do
            curl -s --max-time 5 -o /dev/null "$BASE/api/me?obs=$i" || true
        done
        per=$(promq 'instance:shop_requests:rate10s > 0' | grep -c . || true)
        overall=$(promq 'job:shop_requests:rate10s' | awk '{ print $1 }')
        p99=$(promq 'job:shop_latency_seconds:p99_10s' | awk '{ print $1 }')
        err=$(promq 'job:shop_errors:rate10s' | awk '{ print $1 }')
        ratio=$(promq 'job:shop_error_ratio:rate10s' | awk '{ print $1 }')
        r1m=$(promq 'job:shop_requests:rate1m > 0' | awk '{ print $1 }')
        if [ "$per" = "$n" ] && [ -n "$overall" ] && [ -n "$err" ] && [ -n "$ratio" ] && [ -n "$r1m" ] &&
            [ -n "$p99" ] && [ "$p99" != NaN ] && [ "$(promq 'instance:shop_latency_seconds:p99_10s' | grep -vc '^NaN' || true)" -ge 1 ]; then
            ok "recording rules: $per replicas with traffic, overall $(printf '%.1f' "$overall") req/s, errors $err/s (ratio $ratio), p99 ${p99} s; 1m rate $(printf '%.1f' "$r1m") req/s"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            bad "recording rules after 60 s of requests: replicas with a rate $per (want $n), overall '${overall}', errors '${err}', ratio '${ratio}', p99 '${p99}', 1m '${r1m}'"
            return 1
        fi
        sleep 1
    done
}

check_logs() {
    local id1 id2 c
    id1="obs-$(date +%s)-$RANDOM"
    if send_with_id "$id1"; then ok "request $id1 through nginx answered with its X-Request-Id"; else bad "request $id1: no X-Request-Id echoed"; fi
    check_request_logs "$id1" "central logs" || true
    [ "$RESTART" = 1 ] || return 0
    c=$("${DC[@]}" ps -q logs)
    if [ -z "$c" ]; then
        bad "no log collector container in project $P"
        return 1
    fi
    log "restarting the log collector"
    docker restart -t 10 "$c" >/dev/null
    local deadline=$((SECONDS + 60))
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null)" = healthy ]; do
        if [ $SECONDS -ge $deadline ]; then
            bad "log collector not healthy within 60 s of its restart"
            return 1
        fi
        sleep 1
    done
    check_request_logs "$id1" "after the collector's restart, the earlier lines" || true
    id2="obs-$(date +%s)-$RANDOM"
    send_with_id "$id2" || true
    check_request_logs "$id2" "after the collector's restart, new lines" || true
}

check_internal_status() {
    local body
    body=$(curl -s --max-time 5 "$BASE/stub_status" || true)
    if grep -q 'Active connections' <<< "$body"; then
        bad "nginx's stub_status is reachable through the published port"
    else
        ok "nginx's stub_status is not reachable through the published port"
    fi
}

log "observability checks: project $P, nginx $BASE, Prometheus $PROM"
case "$MODE" in
targets)
    if check_ready; then check_targets "$WANT" 60 || true; fi
    ;;
all)
    N=$(running_shops)
    check_ready || { finish; exit 1; }
    check_targets "$N" 60 || true
    [ "$SCALE" = 0 ] || check_scale "$N"
    check_rules "$N" || true
    check_logs || true
    check_internal_status
    ;;
esac
finish
