#!/bin/bash
# One command per fault, for a lecturer (live) or for tests/failover/scenario.sh.
#
#   tests/failover/fault.sh <fault> [args]
#
# Every step appends a marker to the running simulator report
# (<report>/faults.jsonl via `distshop-sim mark`), so it shows on the live line,
# in timeline.csv and as a red dashed line on chart.svg.
#
# Environment:
#   DISTSHOP_PROJECT   compose project to target           (default distshop: the stack that
#                      `cd compose && docker-compose up -d` starts, see compose/.env)
#   DISTSHOP_REPORT    report folder to mark               (default reports/latest)
#   DISTSHOP_SIM       distshop-sim binary                  (default: target dirs, then PATH)
#   DISTSHOP_HTTP_PORT, DISTSHOP_HTTPS_PORT, DISTSHOP_MANAGER_PORT, DISTSHOP_REGISTER_LIMIT,
#   DISTSHOP_HASH_PER_CLIENT
#                      the project's settings, for `scale`, `whole-restart` and `ramp`, which
#                      run docker-compose and must not change them; when unset, taken from
#                      the running containers (published ports, the shop's SHOP_REGISTER_LIMIT)
#
# Faults (only through the Docker CLI, only on $DISTSHOP_PROJECT's containers):
#   shop-kill [N] [DOWN_S]      SIGKILL shop replica N (default: a random one), start it DOWN_S (5) later
#   shop-stop [N] [DOWN_S]      SIGTERM (graceful docker stop) replica N, start it DOWN_S (5) later
#   shop-freeze [N]             docker pause replica N and leave it paused: the heartbeat manager
#                               restarts it (its steps and timing are marked)
#   shop-sigstop [N]            SIGSTOP replica N's process and leave it stopped (same)
#   ramp [SECONDS] [RPS]        extra load (RPS catalog pages/s past the micro-cache) for SECONDS with
#                               the manager's autoscaler on: it must scale out, then back in to 3
#   shop-500                    a bad deploy: one more replica (copy of a running one) with SHOP_FAULT=http500,
#                               answering 500 to everything but its probes: the manager replaces it
#   shop-db-hang [N]            replica N's database calls hang (packets to :3306 dropped in its
#                               network namespace; needs root): the manager restarts it
#   galera-kill [N] [DOWN_S]    SIGKILL galera-N (default 1 = HAProxy's writer), start it DOWN_S (20)
#                               later, wait until Synced and say whether it rejoined by IST or SST
#   redis-master-kill [SLOT] [DOWN_S]
#                               SIGKILL the Redis master serving SLOT (default 0), start it DOWN_S (12)
#                               later, wait for cluster_state:ok with 3 masters + 3 replicas
#   db-kill [DOWN_S]            SIGKILL the HAProxy `db`, start it DOWN_S (2) later
#   nginx-kill [DOWN_S]         SIGKILL nginx, start it DOWN_S (2) later
#   scale N                     compose up -d --scale shop=N (no recreate)
#   rolling-restart [PAUSE_S]   docker restart every shop replica in turn, waiting for healthy between
#   whole-restart [--kill]      stop (or SIGKILL) every container, then `up -d`, wait until healthy
#   chaos DURATION_S [EVERY_S] [SEED]
#                               a random fault from {shop-kill, shop-stop, galera-kill, redis-master-kill,
#                               db-kill} every EVERY_S (30) seconds for DURATION_S seconds (max 900)
#   status                      containers, Galera writer/state, Redis masters
#
# Why kill + start instead of relying on `restart: unless-stopped`: Docker
# treats `docker kill` (and `docker stop`) as a manual stop and does not apply
# the restart policy; starting the container again is what a supervisor (or
# the policy, after a real crash) does. DOWN_S makes the outage long enough
# to be seen.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P="${DISTSHOP_PROJECT:-distshop}"
REPORT="${DISTSHOP_REPORT:-$ROOT/reports/latest}"
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
compose_select || exit 2
compose_env_ready "$ROOT" || exit 2
DC=("${COMPOSE[@]}" -p "$P" -f "$ROOT/compose/docker-compose.yml")

SIM="${DISTSHOP_SIM:-}"
if [ -z "$SIM" ]; then
    for c in "$ROOT/target/bookworm/release/distshop-sim" "${CARGO_TARGET_DIR:-$ROOT/target}/release/distshop-sim" "$ROOT/target/release/distshop-sim"; do
        [ -x "$c" ] && { SIM=$c; break; }
    done
    [ -n "$SIM" ] || SIM=$(command -v distshop-sim || true)
fi

log() { echo "[$(date -u +%H:%M:%S)] fault: $*" >&2; }
mark() { # mark LABEL: log it and put it on the running report's timeline
    log "$*"
    if [ -n "$SIM" ] && [ -d "$REPORT" ]; then
        "$SIM" mark --report "$REPORT" --source fault.sh "$*" >/dev/null 2>&1 || log "(could not mark $REPORT)"
    fi
}
die() { log "$*"; exit 2; }

# containers of a service, by compose labels (fast; no docker-compose start-up)
cids() {
    docker ps -a -q --filter "label=com.docker.compose.project=$P" \
        --filter "label=com.docker.compose.service=$1" | sort
}
running_cids() {
    docker ps -q --filter "label=com.docker.compose.project=$P" \
        --filter "label=com.docker.compose.service=$1" | sort
}
cname() { container_label "$1" || echo "$1"; }
# keep_settings: before docker-compose touches the project, export the settings its
# containers run with (unless set): otherwise compose would recreate them with
# compose/.env's values (nginx on other ports, the shop with another register limit)
keep_settings() {
    local c p
    c=$(running_cids nginx | head -n1)
    if [ -n "$c" ]; then
        p=$(docker port "$c" 80/tcp 2>/dev/null | sed -n 1p) || p=""
        [ -n "$p" ] && [ -z "${DISTSHOP_HTTP_PORT:-}" ] && export DISTSHOP_HTTP_PORT=${p##*:}
        p=$(docker port "$c" 443/tcp 2>/dev/null | sed -n 1p) || p=""
        [ -n "$p" ] && [ -z "${DISTSHOP_HTTPS_PORT:-}" ] && export DISTSHOP_HTTPS_PORT=${p##*:}
    fi
    c=$(running_cids manager | head -n1)
    if [ -n "$c" ] && [ -z "${DISTSHOP_MANAGER_PORT:-}" ]; then
        p=$(docker port "$c" 9091/tcp 2>/dev/null | sed -n 1p) || p=""
        [ -n "$p" ] && export DISTSHOP_MANAGER_PORT=${p##*:}
    fi
    c=$(running_cids shop | head -n1)
    if [ -n "$c" ] && [ -z "${DISTSHOP_REGISTER_LIMIT:-}" ]; then
        p=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c" 2>/dev/null | sed -n 's/^SHOP_REGISTER_LIMIT=//p') || p=""
        [ -n "$p" ] && export DISTSHOP_REGISTER_LIMIT=$p
    fi
    if [ -n "$c" ] && [ -z "${DISTSHOP_HASH_PER_CLIENT:-}" ]; then
        p=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c" 2>/dev/null | sed -n 's/^SHOP_HASH_PER_CLIENT=//p') || p=""
        [ -n "$p" ] && export DISTSHOP_HASH_PER_CLIENT=$p
    fi
    return 0
}
health() { docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null || echo gone; }
wait_health() { # wait_health CID TIMEOUT_S → 0 when running/healthy
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(health "$1")" = running/healthy ] && return 0
        sleep 0.5
    done
    return 1
}
shop_cid() { # shop_cid [N]: replica N (compose index) or a random running one
    local all
    mapfile -t all < <(running_cids shop)
    [ ${#all[@]} -gt 0 ] || die "no running shop replica in project $P"
    if [ -n "${1:-}" ]; then
        for c in "${all[@]}"; do
            [ "$(docker inspect -f '{{index .Config.Labels "com.docker.compose.container-number"}}' "$c")" = "$1" ] && { echo "$c"; return; }
        done
        die "shop replica $1 not running"
    fi
    echo "${all[RANDOM % ${#all[@]}]}"
}
redis_cli() { docker exec "$(running_cids redis-1 | sed -n 1p)" redis-cli "$@" | tr -d '\r'; }
redis_any_cli() { # first reachable redis node
    local c
    for s in redis-1 redis-2 redis-3 redis-4 redis-5 redis-6; do
        c=$(running_cids "$s" | head -n1)
        [ -n "$c" ] || continue
        if docker exec "$c" redis-cli ping >/dev/null 2>&1; then
            docker exec "$c" redis-cli "$@" | tr -d '\r'
            return
        fi
    done
    return 1
}
galera_status() { # galera_status N → wsrep_local_state_comment
    docker exec "$(running_cids "galera-$1" | sed -n 1p)" mariadb -N -B \
        -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}'
}

kill_and_start() { # kill_and_start CID SIGNAL DOWN_S LABEL
    local c=$1 sig=$2 down=$3 name
    name=$(cname "$c")
    if [ "$sig" = STOP ]; then
        mark "docker stop (SIGTERM) $name"
        docker stop "$c" >/dev/null
        mark "$name stopped"
    else
        docker kill -s "$sig" "$c" >/dev/null
        mark "kill -$sig $name"
    fi
    sleep "$down"
    docker start "$c" >/dev/null
    mark "started $name"
}

f_shop() { # SIG N DOWN
    local c t0
    c=$(shop_cid "${2:-}")
    t0=$SECONDS
    kill_and_start "$c" "$1" "${3:-5}"
    if wait_health "$c" 60; then
        mark "$(cname "$c") healthy again ($((SECONDS - t0))s after the fault)"
    else
        mark "$(cname "$c") NOT healthy after 60 s"
        return 1
    fi
}

f_freeze() { # HOW N: freeze a replica (docker pause, or SIGSTOP to its process) and leave it
    # frozen: the heartbeat manager must take it out and restart it
    local how=$1 c t0 st i
    c=$(shop_cid "${2:-}")
    if [ "$how" = pause ]; then
        docker pause "$c" >/dev/null
        t0=$(date +%s.%N)
        mark "docker pause $(cname "$c") (left frozen: the manager must restart it)"
    else
        docker kill -s STOP "$c" >/dev/null
        t0=$(date +%s.%N)
        mark "SIGSTOP to $(cname "$c")'s process (left stopped: the manager must restart it)"
    fi
    for i in $(seq 1 300); do
        st=$(docker inspect -f '{{.State.Paused}}/{{.State.Pid}}/{{.RestartCount}}/{{.State.StartedAt}}' "$c" 2>/dev/null || echo gone)
        if [ "$how" = pause ] && [ "${st%%/*}" = false ]; then break; fi
        if [ "$how" = sigstop ] && [ "$(ps -o stat= -p "$(docker inspect -f '{{.State.Pid}}' "$c")" 2>/dev/null | cut -c1)" != T ]; then break; fi
        sleep 0.1
    done
    if [ "$i" -ge 300 ]; then
        mark "$(cname "$c") still frozen 30 s later: no manager acted"
        return 1
    fi
    mark "$(cname "$c") no longer frozen ($(python3 -c "print(round($(date +%s.%N) - $t0, 1))")s after the freeze)"
    if wait_health "$c" 60; then
        mark "$(cname "$c") healthy again"
    else
        mark "$(cname "$c") NOT healthy after 60 s"
        return 1
    fi
}

f_db_hang() { # N: the replica's database calls hang: its packets to port 3306 are dropped
    # (iptables in its network namespace, so pooled connections stall instead of failing and
    # new ones time out). Left so: the manager must restart it (a restart gives the container a
    # new network namespace without the rule). Lifted by this command after 60 s otherwise.
    local c pid started t0 i
    c=$(shop_cid "${1:-}")
    pid=$(docker inspect -f '{{.State.Pid}}' "$c")
    started=$(docker inspect -f '{{.State.StartedAt}}' "$c")
    nsenter -t "$pid" -n iptables -A OUTPUT -p tcp --dport 3306 -j DROP ||
        die "cannot add the iptables rule in $(cname "$c")'s network namespace (needs root)"
    t0=$(date +%s.%N)
    mark "database calls of $(cname "$c") hang (its packets to :3306 dropped; left so)"
    for i in $(seq 1 600); do
        [ "$(docker inspect -f '{{.State.StartedAt}}' "$c" 2>/dev/null)" != "$started" ] && break
        sleep 0.1
    done
    if [ "$i" -ge 600 ]; then
        nsenter -t "$pid" -n iptables -D OUTPUT -p tcp --dport 3306 -j DROP 2>/dev/null || true
        mark "$(cname "$c") not restarted within 60 s: rule lifted by hand"
        return 1
    fi
    mark "$(cname "$c") restarted ($(python3 -c "print(round($(date +%s.%N) - $t0, 1))")s after its database calls began to hang)"
    if wait_health "$c" 60; then
        mark "$(cname "$c") healthy again"
    else
        mark "$(cname "$c") NOT healthy after 60 s"
        return 1
    fi
}

f_ramp() { # SECONDS RPS: a load ramp on top of whatever runs: RPS (240) requests/s of
    # catalog pages that miss nginx's micro-cache (a session cookie bypasses it) for SECONDS (25),
    # with the manager's autoscaler switched on (3..5 replicas, out above 60 rps per replica, in
    # below 40 with one fewer). Marks when it scaled out (and the p99 it had measured then),
    # when it was back at 3, and every scale step; then switches autoscaling off again.
    local secs=${1:-25} rps=${2:-240} mgr conns=12 delay lua t_end n last outs=0 ins=0 flaps=0 t0
    keep_settings
    local port=${DISTSHOP_MANAGER_PORT:-$(env_value "$ROOT" DISTSHOP_MANAGER_PORT)}
    mgr="http://127.0.0.1:${port:-9091}"
    command -v wrk >/dev/null || die "ramp needs wrk (apt-get install wrk)"
    autoscale() { # on|off
        DISTSHOP_AUTOSCALE=$1 DISTSHOP_AUTOSCALE_MIN=3 DISTSHOP_AUTOSCALE_MAX=5 \
            DISTSHOP_SCALE_UP_RPS=60 DISTSHOP_SCALE_DOWN_RPS=40 DISTSHOP_SCALE_UP_P99_MS=200 \
            DISTSHOP_SCALE_WINDOW_MS=2000 DISTSHOP_SCALE_COOLDOWN_SECS=15 "${DC[@]}" up -d --no-deps manager >/dev/null 2>&1
        local i
        for i in $(seq 1 30); do curl -fsS --max-time 1 -o /dev/null "$mgr/state" && return 0; sleep 1; done
        return 1
    }
    replicas() { curl -fsS --max-time 2 "$mgr/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["replicas"]))'; }
    autoscale on || die "the manager did not come back with autoscaling on"
    last=$(replicas) || die "cannot read the manager's state"
    mark "autoscaling on (3..5 replicas; out above 60 rps per replica, in below 40)"
    lua=$(mktemp --suffix .lua)
    delay=$((1000 * conns / rps))
    cat > "$lua" <<LUA
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/?page=" .. (n % 5 + 1), {["Cookie"] = "distshop_session=ramp"})
end
delay = function() return $delay end
LUA
    t0=$SECONDS
    wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -s "$lua" "${BASE_URL:-http://127.0.0.1:${DISTSHOP_HTTP_PORT:-8080}}" > "$lua.out" 2>&1 &
    local wp=$!
    mark "ramp: +$rps requests/s of catalog pages for ${secs}s"
    while kill -0 "$wp" 2>/dev/null; do
        n=$(replicas 2>/dev/null || echo "$last")
        if [ "$n" -gt "$last" ]; then
            outs=$((outs + 1))
            mark "manager scaled out $last -> $n ($((SECONDS - t0))s into the ramp; $(curl -fsS --max-time 2 "$mgr/state" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("autoscale_note") or "")'))"
        elif [ "$n" -lt "$last" ]; then
            flaps=$((flaps + 1))
            mark "manager scaled IN $last -> $n during the ramp"
        fi
        last=$n
        sleep 1
    done
    mark "ramp over: $(grep -E 'Requests/sec' "$lua.out" | tr -s ' ')"
    t_end=$SECONDS
    while [ $((SECONDS - t_end)) -lt 120 ]; do
        n=$(replicas 2>/dev/null || echo "$last")
        if [ "$n" -lt "$last" ]; then
            ins=$((ins + 1))
            mark "manager scaled in $last -> $n ($((SECONDS - t_end))s after the ramp)"
        elif [ "$n" -gt "$last" ]; then
            flaps=$((flaps + 1))
            mark "manager scaled OUT $last -> $n after the ramp"
        fi
        last=$n
        [ "$n" -le 3 ] && break
        sleep 1
    done
    rm -f "$lua" "$lua.out"
    autoscale off || log "(the manager did not come back with autoscaling off)"
    if [ "$outs" -gt 0 ] && [ "$last" -le 3 ]; then
        mark "ramp result: scaled out $outs time(s), back at $last replicas $((SECONDS - t_end))s after the ramp; $flaps reversal(s)"
    else
        mark "ramp result: FAILED (scaled out $outs time(s), $last replicas at the end, $flaps reversal(s))"
        return 1
    fi
}

f_http500() { # a bad deploy: one more shop replica, a copy of a running one (same image,
    # environment, labels, networks) but with SHOP_FAULT=http500, so it answers 500 to every
    # request while passing its health checks and beating OK. The manager must notice its error
    # share and replace it with a good copy.
    local t name num net args=() e l
    t=$(shop_cid "")
    num=$(for c in $(cids shop); do docker inspect -f '{{index .Config.Labels "com.docker.compose.container-number"}}' "$c"; done | sort -n | tail -n1)
    num=$((num + 1))
    name=$(docker inspect -f '{{.Name}}' "$t" | sed 's,^/,,')
    if [[ "$name" == "${P}_"* ]]; then name="${P}_shop_${num}"; else name="${P}-shop-${num}"; fi
    while IFS= read -r e; do [ -n "$e" ] && args+=(-e "$e"); done < <(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$t")
    while IFS= read -r l; do
        [ -n "$l" ] || continue
        case "$l" in com.docker.compose.container-number=*) continue ;; esac
        args+=(--label "$l")
    done < <(docker inspect -f '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{println}}{{end}}' "$t")
    mapfile -t nets < <(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{println}}{{end}}' "$t" | grep -v '^$')
    docker create --name "$name" "${args[@]}" -e SHOP_FAULT=http500 \
        --label "com.docker.compose.container-number=$num" --restart unless-stopped \
        --network "${nets[0]}" --network-alias shop "$(docker inspect -f '{{.Config.Image}}' "$t")" serve >/dev/null
    for net in "${nets[@]:1}"; do docker network connect --alias shop "$net" "$name"; done
    docker start "$name" >/dev/null
    local t0
    t0=$(date +%s.%N)
    mark "bad deploy: $name answers 500 to every request (SHOP_FAULT=http500), passes its health checks"
    for _ in $(seq 1 600); do
        docker inspect "$name" >/dev/null 2>&1 || break
        sleep 0.1
    done
    if docker inspect "$name" >/dev/null 2>&1; then
        docker rm -f "$name" >/dev/null 2>&1 || true
        mark "$name not replaced within 60 s: removed by hand"
        return 1
    fi
    mark "$name replaced by the manager ($(python3 -c "print(round($(date +%s.%N) - $t0, 1))")s after it started answering 500)"
}

f_galera() { # N DOWN
    local n=${1:-1} down=${2:-20} c since st t0 how
    c=$(cids "galera-$n" | head -n1)
    [ -n "$c" ] || die "no galera-$n in project $P"
    t0=$SECONDS
    kill_and_start "$c" KILL "$down"
    since=$(date -u +%Y-%m-%dT%H:%M:%S)
    while [ $((SECONDS - t0)) -lt $((down + 300)) ]; do
        st=$(galera_status "$n" || true)
        [ "$st" = Synced ] && break
        sleep 1
    done
    if [ "${st:-}" != Synced ]; then
        mark "galera-$n NOT Synced after $((SECONDS - t0))s"
        return 1
    fi
    how=unknown
    local lg
    lg=$(docker logs --since "$since" "$c" 2>&1 || true)
    # MariaDB always starts the SST script on a joiner; when the donor can
    # serve the gap from its gcache the "SST" is a no-op at the node's own
    # recovered position and the writesets come by IST ("IST received")
    if grep -q "IST received:" <<< "$lg"; then
        how=IST
    elif grep -qi "SST succeeded\|SST received" <<< "$lg"; then
        how=SST
    fi
    mark "galera-$n Synced again, rejoined by $how ($((SECONDS - t0))s after the kill)"
}

redis_master_of_slot() { # → hostname of the master holding SLOT
    local slot=$1
    redis_any_cli cluster nodes | awk -v s="$slot" '
        $3 ~ /master/ && $3 !~ /fail/ {
            for (i = 9; i <= NF; i++) {
                n = split($i, r, "-")
                lo = r[1]; hi = (n > 1) ? r[2] : r[1]
                if (s + 0 >= lo + 0 && s + 0 <= hi + 0) {
                    h = $2; sub(/^[^,]*,/, "", h); print h; exit
                }
            }
        }'
}

f_redis() { # SLOT DOWN
    local slot=${1:-0} down=${2:-12} m c t0 info nodes
    m=$(redis_master_of_slot "$slot")
    [ -n "$m" ] || die "no master found for slot $slot"
    c=$(cids "$m" | head -n1)
    t0=$SECONDS
    docker kill -s KILL "$c" >/dev/null
    mark "kill -KILL $m (Redis master of slot $slot)"
    # watch the failover from a surviving node
    local promoted=""
    while [ $((SECONDS - t0)) -lt 60 ]; do
        promoted=$(redis_master_of_slot "$slot" 2>/dev/null || true)
        if [ -n "$promoted" ] && [ "$promoted" != "$m" ] &&
            redis_any_cli cluster info | grep -q '^cluster_state:ok'; then
            break
        fi
        promoted=""
        sleep 0.2
    done
    if [ -n "$promoted" ]; then
        mark "slot $slot served by $promoted ($((SECONDS - t0))s after the kill)"
    else
        mark "slot $slot NOT failed over after 60 s"
    fi
    local left=$((down - (SECONDS - t0)))
    [ "$left" -gt 0 ] && sleep "$left"
    docker start "$c" >/dev/null
    mark "started $m"
    while [ $((SECONDS - t0)) -lt $((down + 90)) ]; do
        info=$(redis_any_cli cluster info || true)
        nodes=$(redis_any_cli cluster nodes | sed 's/myself,//' || true)
        if grep -q '^cluster_state:ok' <<< "$info" && [ "$(grep -c ' master ' <<< "$nodes")" = 3 ] &&
            [ "$(grep -c ' slave ' <<< "$nodes")" = 3 ] && ! grep -q 'fail' <<< "$nodes"; then
            mark "$m back as $(grep -o "$m [a-z]*" <<< "$(awk '{h=$2; sub(/^[^,]*,/, "", h); print h, $3}' <<< "$nodes")" | awk '{print $2}'); 3 masters + 3 replicas"
            return 0
        fi
        sleep 1
    done
    mark "Redis cluster NOT back to 3+3 after $((SECONDS - t0))s"
    return 1
}

f_simple() { # SERVICE DOWN
    local c t0
    c=$(cids "$1" | head -n1)
    [ -n "$c" ] || die "no $1 in project $P"
    t0=$SECONDS
    kill_and_start "$c" KILL "$2"
    if wait_health "$c" 60; then
        mark "$1 healthy again ($((SECONDS - t0))s after the kill)"
    else
        mark "$1 NOT healthy after 60 s"
        return 1
    fi
}

wait_all_healthy() { # TIMEOUT_S
    local deadline=$((SECONDS + $1)) bad c
    while [ $SECONDS -lt $deadline ]; do
        bad=0
        for s in nginx shop db galera-1 galera-2 galera-3 redis-1 redis-2 redis-3 redis-4 redis-5 redis-6; do
            [ -n "$(cids "$s")" ] || bad=1
            for c in $(cids "$s"); do [ "$(health "$c")" = running/healthy ] || bad=1; done
        done
        [ "$bad" = 0 ] && return 0
        sleep 1
    done
    return 1
}

f_scale() { # N
    local n=$1 t0 before
    keep_settings
    before=$(running_cids shop | wc -l)
    t0=$SECONDS
    mark "scale shop $before -> $n"
    "${DC[@]}" up -d --no-recreate --no-deps --scale "shop=$n" shop >/dev/null 2>&1
    local deadline=$((SECONDS + 120)) ok c
    while [ $SECONDS -lt $deadline ]; do
        ok=0
        for c in $(running_cids shop); do [ "$(health "$c")" = running/healthy ] && ok=$((ok + 1)); done
        [ "$ok" = "$n" ] && [ "$(running_cids shop | wc -l)" = "$n" ] && break
        sleep 0.5
    done
    mark "shop = $n healthy replicas ($((SECONDS - t0))s)"
}

f_rolling() { # PAUSE
    local c t0
    for c in $(running_cids shop); do
        t0=$SECONDS
        mark "rolling: restart $(cname "$c")"
        docker restart "$c" >/dev/null
        wait_health "$c" 60 || { mark "$(cname "$c") NOT healthy after restart"; return 1; }
        mark "rolling: $(cname "$c") healthy ($((SECONDS - t0))s)"
        sleep "${1:-2}"
    done
}

f_whole() { # [--kill]
    local t0=$SECONDS
    keep_settings
    if [ "${1:-}" = --kill ]; then
        mark "whole cluster: kill -KILL every container"
        # shellcheck disable=SC2046
        docker kill -s KILL $(docker ps -q --filter "label=com.docker.compose.project=$P") >/dev/null 2>&1 || true
    else
        mark "whole cluster: ${COMPOSE[*]} stop"
        "${DC[@]}" stop >/dev/null 2>&1
    fi
    mark "whole cluster: up -d"
    "${DC[@]}" up -d >/dev/null 2>&1
    if wait_all_healthy 400; then
        mark "whole cluster healthy again ($((SECONDS - t0))s)"
    else
        mark "whole cluster NOT healthy after $((SECONDS - t0))s"
        return 1
    fi
}

f_chaos() { # DURATION EVERY SEED
    local dur=${1:?chaos DURATION_S [EVERY_S] [SEED]} every=${2:-30} t0=$SECONDS f
    [ "$dur" -le 900 ] || die "chaos is bounded: DURATION_S <= 900"
    [ "$every" -ge 10 ] || die "EVERY_S >= 10"
    RANDOM=${3:-$$}
    local faults=(shop-kill shop-stop galera-kill redis-master-kill db-kill)
    mark "chaos for ${dur}s, a fault every ${every}s"
    while [ $((SECONDS - t0 + every)) -le "$dur" ]; do
        sleep "$every"
        f=${faults[RANDOM % ${#faults[@]}]}
        case "$f" in
        galera-kill) "$0" galera-kill $((RANDOM % 3 + 1)) 10 || true ;;
        redis-master-kill) "$0" redis-master-kill $((RANDOM % 16384)) 8 || true ;;
        *) "$0" "$f" || true ;;
        esac
    done
    mark "chaos over"
}

f_status() {
    docker ps -a --filter "label=com.docker.compose.project=$P" --format '{{.Names}}\t{{.Status}}' | sort
    for n in 1 2 3; do echo "galera-$n: $(galera_status "$n" || echo down)"; done
    echo "redis masters:"
    redis_any_cli cluster nodes | awk '$3 ~ /master/ {h=$2; sub(/^[^,]*,/, "", h); print "  " h, $3, $9, $10, $11}'
}

[ $# -ge 1 ] || { sed -n '2,36p' "$0"; exit 2; }
what=$1
shift
case "$what" in
shop-kill) f_shop KILL "${1:-}" "${2:-5}" ;;
shop-stop) f_shop STOP "${1:-}" "${2:-5}" ;;
shop-freeze) f_freeze pause "${1:-}" ;;
shop-sigstop) f_freeze sigstop "${1:-}" ;;
shop-db-hang) f_db_hang "${1:-}" ;;
ramp) f_ramp "${1:-25}" "${2:-240}" ;;
shop-500) f_http500 ;;
galera-kill) f_galera "${1:-1}" "${2:-20}" ;;
redis-master-kill) f_redis "${1:-0}" "${2:-12}" ;;
db-kill) f_simple db "${1:-2}" ;;
nginx-kill) f_simple nginx "${1:-2}" ;;
scale) f_scale "${1:?scale N}" ;;
rolling-restart) f_rolling "${1:-2}" ;;
whole-restart) f_whole "${1:-}" ;;
chaos) f_chaos "$@" ;;
status) f_status ;;
-h | --help | help) sed -n '2,36p' "$0" ;;
*) die "unknown fault $what (see --help)" ;;
esac
