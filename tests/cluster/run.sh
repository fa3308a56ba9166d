#!/bin/bash
# End-to-end test of the compose stack (compose/docker-compose.yml).
#
#   tests/cluster/run.sh [--keep] [--skip-kill]
#
# 1. builds the images (compose/offline-prepare.sh; DISTSHOP_USE_REGISTRY=1 to
#    use `docker-compose build` with the multi-stage Dockerfiles instead),
# 2. brings the stack up under a unique project name with nginx on
#    127.0.0.1:$DISTSHOP_TEST_HTTP_PORT (default 28080; HTTPS on
#    $DISTSHOP_TEST_HTTPS_PORT, default that + 2; the manager on that + 1),
#    without a registration limit (every request comes from Docker's
#    gateway), and waits for health (compose/.env: made if missing),
# 3. checks, through nginx on 127.0.0.1 only:
#    - request ids, replica names (X-Served-By: shop-<n>), /static/ served by
#      nginx itself, gzip;
#    - the edge (security issue 11): HTTPS with the certificate nginx made
#      (verified), HSTS on HTTPS only, /metrics /heartbeat /readyz /healthz
#      404 on both ports, a stalled request body cut off, the HTTP->HTTPS
#      redirect switch; the session cookie is Secure over HTTPS and not over
#      HTTP; a client's own X-Forwarded-For/X-Real-IP is not its address
#      (failed logins with rotating headers still end in 429); the security
#      probe (tests/security/probe.py) over HTTPS and HTTP;
#    - a shopper journey (register, login, cart, checkout with an
#      Idempotency-Key and its replay, order list);
#    - requests spread over all 3 replicas; one session valid on every replica;
#    - the order written through `db` is read on each Galera node directly;
#    - Redis Cluster: 3 masters + 3 replicas, 16384 slots;
#    - --scale shop=5 then =2 under a steady bounded load, zero failures;
#      time for a new replica to take traffic;
#    - failover under load: kill -9 of the Galera writer, kill -9 of a Redis
#      master; checkouts retried with their Idempotency-Key give exactly one
#      order each;
#    - a real browser (tests/browser, headless Chromium over WebDriver): a
#      shopper's and an admin's journey, the replica that served the cart
#      killed before the checkout, the browser session going on;
#    - whole-stack restart (clean stop; then kill -9 of everything) keeps
#      every order;
# 4. prints timings and memory at rest, tears the stack down (down -v), also
#    on failure.
# --keep leaves the stack running (prints how to remove it);
# --skip-kill skips the kill -9 restart.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=0 SKIP_KILL=0
for a in "$@"; do
    case "$a" in
    --keep) KEEP=1 ;;
    --skip-kill) SKIP_KILL=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
    esac
done

P="${DISTSHOP_TEST_PROJECT:-distshop-test-$$}"
PORT="${DISTSHOP_TEST_HTTP_PORT:-28080}"
HTTPS_PORT="${DISTSHOP_TEST_HTTPS_PORT:-$((PORT + 2))}"
BASE="http://127.0.0.1:$PORT"
SBASE="https://127.0.0.1:$HTTPS_PORT"
export DISTSHOP_HTTP_PORT="$PORT" DISTSHOP_HTTPS_PORT="$HTTPS_PORT"
export DISTSHOP_MANAGER_PORT="${DISTSHOP_MANAGER_PORT:-$((PORT + 1))}"
export DISTSHOP_PROMETHEUS_PORT="${DISTSHOP_PROMETHEUS_PORT:-$((PORT + 3))}"
export DISTSHOP_CONTROL_PORT="${DISTSHOP_CONTROL_PORT:-$((PORT + 4))}"
export DISTSHOP_LOG_PORT="${DISTSHOP_LOG_PORT:-$((PORT + 5))}"
# All traffic from this host reaches nginx from one address (Docker's
# gateway, through the userland proxy), and the loads below register a
# shopper each: no per-address registration limit on this stack.
export DISTSHOP_REGISTER_LIMIT=0 DISTSHOP_HASH_PER_CLIENT=1000
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
compose_select || exit 2
compose_env_ready "$ROOT" || exit 2
DC=("${COMPOSE[@]}" -p "$P" -f "$ROOT/compose/docker-compose.yml")
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-300}"
PASS=0 FAIL=0
declare -a FIGURES=()

log() { echo "[$(date -u +%H:%M:%S)] $*"; }
ok() { PASS=$((PASS + 1)); log "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); log "FAIL: $*"; }
check() { # check "label" command...
    local label=$1
    shift
    if "$@"; then ok "$label"; else bad "$label"; fi
}
figure() { FIGURES+=("$*"); log "FIGURE: $*"; }
# the shopper probes (journey, orders, load, new-replica; JSON on stdout) are
# subcommands of the simulator, found or built after the images (SIM below)
shopper() { "$SIM" "$@"; }
jqr() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

cleanup() {
    local rc=$?
    trap - EXIT
    rm -f "${CA:-}"
    if [ "$FAIL" -gt 0 ] || [ "$rc" -ne 0 ]; then
        log "failure: last log lines of every service"
        "${DC[@]}" logs --no-color --tail 25 2>/dev/null | tail -n 400 || true
    fi
    if [ "$KEEP" = 1 ]; then
        log "--keep: stack left running; remove with: ${DC[*]} down -v"
    else
        log "tearing down project $P"
        "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    echo
    echo "==== figures"
    printf '  %s\n' "${FIGURES[@]}"
    echo "cluster: $PASS passed, $FAIL failed"
    if [ "$rc" -eq 0 ] && [ "$FAIL" -gt 0 ]; then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
# which command ended the run (set -e): CI keeps only the end of the log
trap 'e=$?; [ "$BASH_SUBSHELL" != 0 ] || log "command failed (exit $e) at line $LINENO: $BASH_COMMAND" >&2' ERR

# --------------------------------------------------------------- preflight
for p in "$PORT" "$HTTPS_PORT" "$DISTSHOP_PROMETHEUS_PORT" "$DISTSHOP_CONTROL_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        log "port 127.0.0.1:$p is in use; set DISTSHOP_TEST_HTTP_PORT / DISTSHOP_TEST_HTTPS_PORT"
        exit 2
    fi
done
log "compose: $(compose_version)"

t0=$SECONDS
if [ "${DISTSHOP_USE_REGISTRY:-0}" = 1 ]; then
    log "building images with the multi-stage Dockerfiles (registry)"
    DISTSHOP_BUILD_VARIANT=.multistage "${DC[@]}" build
else
    log "building images offline (compose/offline-prepare.sh)"
    "$ROOT/compose/offline-prepare.sh"
fi
figure "image build (offline-prepare, incl. cargo): $((SECONDS - t0))s"

# the simulator: DISTSHOP_SIM, else the one offline-prepare.sh built with the
# images, else a host build (the registry build makes none)
SIM="${DISTSHOP_SIM:-}"
for c in "$ROOT/target/bookworm/release/distshop-sim" "${CARGO_TARGET_DIR:-$ROOT/target}/release/distshop-sim" "$ROOT/target/release/distshop-sim"; do
    if [ -z "$SIM" ] && [ -x "$c" ]; then SIM=$c; fi
done
if [ -z "$SIM" ]; then
    log "no distshop-sim built: cargo build --release -p simulator"
    (cd "$ROOT" && cargo build --release -p simulator) >&2
    SIM="${CARGO_TARGET_DIR:-$ROOT/target}/release/distshop-sim"
fi
if ! "$SIM" journey --help >/dev/null 2>&1; then
    log "$SIM has no journey subcommand (built before the probes moved into it): rebuild it (compose/offline-prepare.sh or cargo build --release -p simulator)"
    exit 2
fi
log "shopper probes: $SIM"

# ----------------------------------------------------------------- helpers
# every long-running container healthy, $1 shop replicas; prints nothing
wait_healthy() {
    local want_shop=$1 deadline=$((SECONDS + HEALTH_TIMEOUT)) c st unhealthy nshop
    while [ $SECONDS -lt $deadline ]; do
        unhealthy=0 nshop=0
        for svc in nginx manager shop db galera-1 galera-2 galera-3 redis-1 redis-2 redis-3 redis-4 redis-5 redis-6 \
            logs prometheus redis-exporter nginx-exporter controlroom; do
            for c in $("${DC[@]}" ps -q "$svc" 2>/dev/null); do
                st=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null || echo gone)
                [ "$st" = running/healthy ] || unhealthy=$((unhealthy + 1))
                [ "$svc" = shop ] && [ "$st" = running/healthy ] && nshop=$((nshop + 1))
            done
            [ -n "$("${DC[@]}" ps -q "$svc" 2>/dev/null)" ] || unhealthy=$((unhealthy + 1))
        done
        # the shop answering through nginx: a public page (/readyz is internal)
        if [ "$unhealthy" = 0 ] && [ "$nshop" = "$want_shop" ] &&
            curl -fsS --max-time 3 -o /dev/null "$BASE/api/categories"; then
            return 0
        fi
        sleep 1
    done
    "${DC[@]}" ps
    return 1
}

galera_sql() { # galera_sql N SQL: causal read on node N
    docker exec "$("${DC[@]}" ps -q "galera-$1")" mariadb -N -B distshop \
        -e "SET SESSION wsrep_sync_wait=1; $2"
}

redis_cli() { docker exec "$("${DC[@]}" ps -q redis-1)" redis-cli "$@"; }

mem_at_rest() {
    local label=$1 line total=0 mib
    sleep 10
    log "memory at rest ($label):"
    # NAME MEMUSAGE -> per container
    # shellcheck disable=SC2046
    while read -r name usage; do
        mib=$(python3 -c '
import re,sys
v=sys.argv[1]; m=re.match(r"([\d.]+)\s*([KMG]i?B|B)", v)
n=float(m.group(1)); u=m.group(2)
f={"B":1/1048576,"KiB":1/1024,"kB":1/1024,"MiB":1,"MB":1,"GiB":1024,"GB":1024}[u]
print(round(n*f,1))' "$usage")
        total=$(python3 -c "print(round($total+$mib,1))")
        line="$(container_label "$name"): ${mib} MiB"
        log "  $line"
        figure "memory at rest ($label) $line"
    done < <(docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' $("${DC[@]}" ps -q) | sed 's| /.*||')
    figure "memory at rest ($label) TOTAL: ${total} MiB"
}

# ---------------------------------------------------------------- cold start
log "project $P: ${COMPOSE[*]} up -d (cold, empty volumes)"
t0=$SECONDS
"${DC[@]}" up -d 2>&1 | grep -v '^Creating\|^Starting\|^$' || true
if wait_healthy 3; then
    figure "up -> healthy, cold (empty volumes): $((SECONDS - t0))s"
    ok "stack healthy (cold) with 3 shop replicas"
else
    bad "stack not healthy after ${HEALTH_TIMEOUT}s"
    exit 1
fi

# --------------------------------------------------------------- edge checks
# (GET /api/me without a session: a 401 the replica itself answers, never cached)
hdrs=$(curl -sS -D - -o /dev/null -H 'X-Request-Id: cluster-test-42' "$BASE/api/me")
check "GET /api/me without a session through nginx is 401" grep -q '^HTTP/1.1 401' <<< "$hdrs"
check "X-Request-Id is passed through" grep -qi '^X-Request-Id: cluster-test-42' <<< "$hdrs"
check "X-Served-By present" grep -qi '^X-Served-By: ' <<< "$hdrs"
# each replica calls itself shop-<n> after its container (SHOP_SERVICE_NAME:
# shop; Docker's DNS names it <project>_shop_<n> or <project>-shop-<n>), and
# nginx spreads a dozen requests over at least 2 of those names
declare -A served=()
odd=""
for _ in $(seq 1 12); do
    h=$(curl -sS --max-time 3 -D - -o /dev/null "$BASE/api/me" 2>/dev/null | tr -d '\r' |
        sed -n 's/^[Xx]-[Ss]erved-[Bb]y: //p') || true
    [ -n "$h" ] && served[$h]=$((${served[$h]:-0} + 1))
done
for h in "${!served[@]}"; do [[ "$h" =~ ^shop-[0-9]+$ ]] || odd+=" $h"; done
[ "${#served[@]}" -gt 0 ] || odd=" (no replica answered)"
check "X-Served-By is the replica's name shop-<n> (seen: ${!served[*]}${odd:+; not shop-<n>:$odd})" test -z "$odd"
check "12 GETs through nginx reach at least 2 replicas by name ($(for k in "${!served[@]}"; do printf '%s=%s ' "$k" "${served[$k]}"; done))" \
    test "${#served[@]}" -ge 2
hdrs=$(curl -sS -D - -o /dev/null "$BASE/api/me")
check "X-Request-Id minted when absent" grep -qiE '^X-Request-Id: [0-9a-f]{32}' <<< "$hdrs"
static=$(ls "$ROOT/shop/static" | sed -n 1p)
if [ -n "$static" ]; then
    hdrs=$(curl -sS -D - -o /tmp/distshop-static.$$ "$BASE/static/$static")
    check "/static/$static served by nginx itself (no X-Served-By)" \
        bash -c "grep -q '^HTTP/1.1 200' <<< \"\$1\" && ! grep -qi '^X-Served-By' <<< \"\$1\"" _ "$hdrs"
    check "/static/$static has the repository's content" cmp -s "/tmp/distshop-static.$$" "$ROOT/shop/static/$static"
    rm -f "/tmp/distshop-static.$$"
fi
enc=$(curl -sS -D - -o /dev/null -H 'Accept-Encoding: gzip' "$BASE/api/products?per_page=50")
check "gzip on JSON" grep -qi '^Content-Encoding: gzip' <<< "$enc"
nstat=$(docker exec "$("${DC[@]}" ps -q nginx)" curl -fsS http://127.0.0.1/nginx-status || true)
check "stub_status answers inside the nginx container" grep -q 'Active connections' <<< "$nstat"
ext=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/nginx-status")
check "stub_status refused from outside the container (got $ext)" test "$ext" = 403
# micro-cache: the catalog of a visitor without a session, never one with a session
curl -sS -o /dev/null "$BASE/?page=2"
c1=$(curl -sS -D - -o /dev/null "$BASE/?page=2")
check "an anonymous catalog page sets no cookie" bash -c '! grep -qi "^Set-Cookie" <<< "$1"' _ "$c1"
check "an anonymous catalog page is served from nginx's cache (X-Cache-Status: HIT)" \
    grep -qi '^X-Cache-Status: HIT' <<< "$c1"
c2=$(curl -sS -D - -o /dev/null -H 'Cookie: distshop_session=x.y' "$BASE/?page=2")
check "a request with a session cookie bypasses the cache" grep -qi '^X-Cache-Status: BYPASS' <<< "$c2"
c3=$(curl -sS -D - -o /dev/null "$BASE/cart")
check "the cart page is never cached" bash -c '! grep -qi "^X-Cache-Status: HIT" <<< "$1"' _ "$c3"

# ------------------------------------ the edge: TLS, internal endpoints, timeouts
NGINX_C=$("${DC[@]}" ps -q nginx | sed -n 1p)
CA=$(mktemp)
SLOWOUT=$(mktemp)
# a request body that stops coming: nginx must cut it off after 10 s of
# silence (client_body_timeout), not hold the connection; measured meanwhile
python3 - "$PORT" > "$SLOWOUT" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
          b"Content-Length: 1000\r\n\r\n{\"email\":")
t0 = time.monotonic()
try:
    while s.recv(4096):
        pass
except OSError:
    pass
print(round(time.monotonic() - t0, 1))
PY
SLOWPID=$!
# the certificate nginx made in its volume at the first start: the only trust anchor used
docker exec "$NGINX_C" cat /etc/nginx/tls/tls.crt > "$CA" 2>/dev/null || true
san=$(docker exec "$NGINX_C" openssl x509 -in /etc/nginx/tls/tls.crt -noout -ext subjectAltName 2>/dev/null | tail -n1 | tr -s ' ')
check "nginx made its own certificate at the first start (SAN:$san)" grep -q 'DNS:localhost, IP Address:127.0.0.1' <<< "$san"
code=$(curl -sS --max-time 5 --cacert "$CA" -o /dev/null -w '%{http_code}' "$SBASE/api/categories" 2>&1) || true
check "HTTPS on 127.0.0.1:$HTTPS_PORT answers 200, certificate verified with curl --cacert (got $code)" test "$code" = 200
code=$(curl -sS --max-time 5 --cacert "$CA" --resolve "localhost:$HTTPS_PORT:127.0.0.1" -o /dev/null -w '%{http_code}' \
    "https://localhost:$HTTPS_PORT/api/categories" 2>&1) || true
check "HTTPS as https://localhost:$HTTPS_PORT verifies too (got $code)" test "$code" = 200
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SBASE/api/categories" 2>/dev/null) || true
check "a client without that certificate refuses the connection (self-signed; got ${code:-nothing})" test "${code:-000}" = 000
nohsts="" hsts_seen=""
for path in /api/me /api/categories / /static/$static /nginx-health /metrics; do
    h=$(curl -sS --max-time 5 --cacert "$CA" -D - -o /dev/null "$SBASE$path" 2>/dev/null | tr -d '\r' | grep -i '^strict-transport-security:' || true)
    if [ -n "$h" ]; then hsts_seen=$h; else nohsts+=" $path"; fi
done
check "HSTS on every HTTPS answer (${hsts_seen:-none}${nohsts:+; missing on:$nohsts})" test -z "$nohsts"
hh=""
for path in /api/me /api/categories / /static/$static; do
    hh+=$(curl -sS --max-time 5 -D - -o /dev/null "$BASE$path" 2>/dev/null | tr -d '\r' | grep -i '^strict-transport-security:' || true)
done
check "no HSTS on plain HTTP answers" test -z "$hh"
hs=$(curl -sS --max-time 5 --cacert "$CA" -D - -o /dev/null -H 'X-Request-Id: cluster-tls-7' "$SBASE/api/me" | tr -d '\r')
check "HTTPS reaches a replica (401 from /api/me, X-Served-By, request id)" \
    bash -c 'grep -q "^HTTP/[0-9.]* 401" <<< "$1" && grep -qi "^x-served-by: " <<< "$1" && grep -qi "^x-request-id: cluster-tls-7" <<< "$1"' _ "$hs"
not404=""
for path in /metrics /heartbeat /readyz /healthz '/heartbeat?interval_ms=250'; do
    for b in "$BASE" "$SBASE"; do
        c=$(curl -sS --max-time 5 --cacert "$CA" -o /dev/null -w '%{http_code}' "$b$path" 2>/dev/null) || c=err
        [ "$c" = 404 ] || not404+=" $b$path=$c"
    done
done
check "/metrics, /heartbeat, /readyz, /healthz answer 404 through nginx on HTTP and HTTPS${not404:+ (not:$not404)}" test -z "$not404"
not404=""
for path in //metrics /./readyz /%6Detrics /metrics/ /Healthz /x/../heartbeat; do
    for b in "$BASE" "$SBASE"; do
        c=$(curl -sS --max-time 5 --cacert "$CA" --path-as-is -o /dev/null -w '%{http_code}' "$b$path" 2>/dev/null) || c=err
        [ "$c" = 404 ] || not404+=" $b$path=$c"
    done
done
check "other spellings of them (//metrics, /%6Detrics, /metrics/, /Healthz, ...) answer 404 too${not404:+ (not:$not404)}" test -z "$not404"
inside=$(docker exec "$("${DC[@]}" ps -q shop | sed -n 1p)" curl -fsS --max-time 3 http://127.0.0.1:8080/metrics 2>/dev/null | grep -c '^shop_' || true)
check "a replica still serves /metrics inside (docker exec: $inside shop_ lines)" test "${inside:-0}" -gt 0
red=$(docker run --rm --entrypoint sh -e DISTSHOP_HTTP_REDIRECT=on -e DISTSHOP_HTTPS_PORT="$HTTPS_PORT" distshop/nginx:latest -c \
    'distshop-nginx-entrypoint nginx >/dev/null 2>&1 && curl -sS -o /dev/null -w "%{http_code} %{redirect_url} " "http://127.0.0.1/cart?x=1" && curl -sS -o /dev/null -w "%{http_code}" http://127.0.0.1/nginx-health' 2>&1) || true
check "DISTSHOP_HTTP_REDIRECT=on: plain HTTP answers 301 to HTTPS, nginx's health check stays 200 (got: $red)" \
    test "$red" = "301 https://127.0.0.1:$HTTPS_PORT/cart?x=1 200"
wait "$SLOWPID" || true
stalled=$(tail -n1 "$SLOWOUT")
rm -f "$SLOWOUT"
check "a request body that stops coming is cut off by nginx within 12 s (after ${stalled:-?} s)" \
    python3 -c 'import sys; v = sys.argv[1]; sys.exit(0 if v.replace(".", "", 1).isdigit() and float(v) <= 12 else 1)' "${stalled:-x}"

# ------------------------------------------------------------------ journey
J=$(shopper journey "$BASE" --replicas 3) || true
echo "  journey: $J"
if [ "$(jqr 'd["ok"]' <<< "$J")" = True ]; then
    ok "shopper journey: register, login, cart (replayed add counted once), checkout, replay, orders"
    ok "one session valid on every replica: $(jqr 'd["session_ok_on"]' <<< "$J")"
else
    bad "shopper journey: $J"
    exit 1
fi
ORDER_ID=$(jqr 'd["order_id"]' <<< "$J")
EMAIL=$(jqr 'd["email"]' <<< "$J")
PASSWORD=$(jqr 'd["password"]' <<< "$J")

# ------------------------------------- the session cookie and the client address
# Both depend on the shop believing X-Forwarded-Proto / X-Real-IP only from
# nginx (SHOP_TRUSTED_PROXIES); the checks say so when they fail.
login_cookie() { # BASE EMAIL PASSWORD: the session's Set-Cookie after a login, value hidden
    curl -sS --max-time 15 --cacert "$CA" -D - -o /dev/null -H 'Content-Type: application/json' \
        --data "$(python3 -c 'import json, sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2]}))' "$2" "$3")" \
        "$1/api/login" 2>/dev/null | tr -d '\r' | grep -i '^set-cookie: distshop_session=' |
        sed -E 's/^([^=]*=)[^;]*/\1…/' || true
}
sc=$(login_cookie "$SBASE" "$EMAIL" "$PASSWORD")
check "login over HTTPS: the session cookie is Secure [shop: X-Forwarded-Proto from a trusted proxy] (${sc:-no cookie})" \
    grep -qiE ';[[:space:]]*secure([;[:space:]]|$)' <<< "$sc"
sc=$(login_cookie "$BASE" "$EMAIL" "$PASSWORD")
check "login over plain HTTP: the session cookie is not Secure, so the demo keeps working (${sc:-no cookie})" \
    bash -c '[ -n "$1" ] && ! grep -qiE ";[[:space:]]*secure([;[:space:]]|$)" <<< "$1"' _ "$sc"
# A client rotating X-Forwarded-For / X-Real-IP / Forwarded must still be one
# client: after 5 failed logins for an account from one address the next is 429.
XEMAIL="xff-$(date +%s)-$$@example.test" XPW="xff-test-password-$RANDOM$RANDOM"
reg=$(curl -sS --max-time 15 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "{\"email\":\"$XEMAIL\",\"password\":\"$XPW\",\"name\":\"XFF test\"}" "$BASE/api/register" 2>/dev/null) || true
codes=""
for i in 1 2 3 4 5 6 7; do
    codes+="$(curl -sS --max-time 15 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "X-Forwarded-For: 198.51.100.$i" -H "X-Real-IP: 203.0.113.$i" -H "Forwarded: for=192.0.2.$i" \
        --data "{\"email\":\"$XEMAIL\",\"password\":\"wrong-password-$i\"}" "$BASE/api/login" 2>/dev/null) " || codes+="err "
done
check "7 wrong logins to a fresh account (registered: $reg), each with another X-Forwarded-For/X-Real-IP: 401 x5, then 429 at the 6th or 7th [shop: client address from X-Real-IP of a trusted proxy only] (got: $codes)" \
    bash -c 'set -- $1; [ "$1 $2 $3 $4 $5" = "401 401 401 401 401" ] && { [ "$6" = 429 ] || [ "$7" = 429 ]; }' _ "$codes"
# tests/security/probe.py, the black-box questions of issue 11, through nginx:
# all of them over HTTPS (cookies Secure, HSTS), the header and endpoint ones
# over plain HTTP too; each of its lines is a check here
probe_run() { # LABEL ARGS...
    local label=$1 line out
    shift
    out=$(python3 "$ROOT/tests/security/probe.py" "$@" 2>&1) || true
    while IFS= read -r line; do
        case "$line" in
        "ok   "*) ok "security probe, $label: ${line#ok   }" ;;
        "FAIL "*) bad "security probe, $label: ${line#FAIL }" ;;
        esac
    done <<< "$out"
    grep -q '^security probe: ' <<< "$out" || bad "security probe, $label, did not finish: $(tail -n 3 <<< "$out")"
}
log "security probe (tests/security/probe.py) through nginx"
probe_run HTTPS "$SBASE" --cacert "$CA" --ops-hidden
probe_run HTTP "$BASE" --ops-hidden --only d2,d7,d9,d11,origin
# the JSON API against its OpenAPI document, through nginx over HTTPS:
# schemathesis (tests/api-fuzz/run.sh), fewer cases than against the embedded
# shop (CI runs that one with 100 per operation), the same checks
if command -v schemathesis >/dev/null 2>&1; then
    fz=$(API_FUZZ_CACERT="$CA" API_FUZZ_MAX_EXAMPLES=25 \
        bash "$ROOT/tests/api-fuzz/run.sh" "$SBASE" 2>&1) && fzrc=0 || fzrc=$?
    echo "$fz" | grep '^api-fuzz:' | sed 's/^/  /'
    check "schemathesis through nginx (HTTPS): no 5xx, only documented statuses and bodies (tests/api-fuzz/run.sh)" \
        test "$fzrc" = 0
else
    log "schemathesis not installed: the API fuzz run through nginx is skipped (python3 -m pip install schemathesis)"
fi

# ---------------------------------------------------------- spread over replicas
L=$(shopper load "$BASE" --seconds 20 --max-requests 300 --workers 3) || true
echo "  load: $L"
nrep=$(jqr 'len(d["served_by"])' <<< "$L")
minshare=$(jqr 'min(d["served_by"].values()) * 100 // max(1, d["ok"])' <<< "$L")
check "300 requests spread over all 3 replicas (got $nrep, smallest share ${minshare}%)" \
    test "$nrep" = 3 -a "$minshare" -ge 15
check "no failed request in the spread run" test "$(jqr 'd["failed"]' <<< "$L")" = 0

# ------------------------------------------------------------ Galera: every node
for n in 1 2 3; do
    got=$(galera_sql "$n" "SELECT id FROM orders WHERE id = $ORDER_ID" 2>&1 || true)
    check "order $ORDER_ID (written through db) is on galera-$n" test "$got" = "$ORDER_ID"
done
writer=$(for n in 1 2 3; do
    c=$(galera_sql "$n" "SELECT COUNT(*) FROM information_schema.processlist WHERE user='shop'")
    echo "galera-$n:$c"
done | tr '\n' ' ')
log "  shop connections per Galera node (single writer expected on galera-1): $writer"
check "single writer: shop connections only on galera-1" \
    bash -c '[[ "$1" =~ galera-1:[1-9] ]] && [[ "$1" =~ galera-2:0 ]] && [[ "$1" =~ galera-3:0 ]]' _ "$writer"

# --------------------------------------------------------------- Redis Cluster
info=$(redis_cli cluster info | tr -d '\r')
nodes=$(redis_cli cluster nodes | tr -d '\r')
check "redis cluster_state:ok" grep -q '^cluster_state:ok' <<< "$info"
check "redis 16384 slots assigned and ok" \
    bash -c 'grep -q "^cluster_slots_assigned:16384" <<< "$1" && grep -q "^cluster_slots_ok:16384" <<< "$1"' _ "$info"
masters=$(grep -c ' master ' <<< "$(sed 's/myself,//' <<< "$nodes")" || true)
replicas=$(grep -c ' slave ' <<< "$(sed 's/myself,//' <<< "$nodes")" || true)
check "redis has 3 masters + 3 replicas (got $masters + $replicas)" test "$masters" = 3 -a "$replicas" = 3
check "redis announces hostnames (cluster-announce-hostname)" grep -q ',redis-[1-6] ' <<< "$nodes"
# redis-init pairs them for placement over machines: redis-4/5/6 replicate redis-1/2/3
pairs=$(python3 -c '
import sys
ids, host, master = {}, {}, {}
for line in sys.stdin:
    f = line.split()
    if len(f) < 8: continue
    h = f[1].split(",")[-1]
    host[f[0]] = h
    if "slave" in f[2]: master[h] = f[3]
print(" ".join(sorted(f"{r}>{host.get(m, m)}" for r, m in master.items())))' <<< "$nodes")
check "redis replicas paired as made (got: $pairs)" test "$pairs" = "redis-4>redis-1 redis-5>redis-2 redis-6>redis-3"
# nginx keyed the journey's keyless cart add with its request id: the shop
# recorded the add under cart:{u:<id>}:op:<request id> (in the cart's slot)
RID=$(jqr 'd["keyless_add_request_id"]' <<< "$J")
UID_=$(jqr 'd["user_id"]' <<< "$J")
opkey="distshop:cart:{u:$UID_}:op:$RID"
check "a keyless cart add is keyed by nginx's request id ($opkey)" \
    test "$(redis_cli -c exists "$opkey" | tr -d '\r')" = 1
again=$("${DC[@]}" run --rm -T redis-init 2>&1 | tail -n 1)
check "redis-init is idempotent on a formed cluster ($again)" grep -q 'cluster ok' <<< "$again"

# ----------------------------------------------------------- scale under load
# the replicas' names (shop-<compose container number>, what X-Served-By says)
# and, should a replica have fallen back to it, its hostname
known=$(for c in $("${DC[@]}" ps -q shop); do
    docker inspect -f '{{.Config.Hostname}} shop-{{index .Config.Labels "com.docker.compose.container-number"}}' "$c"
done | tr ' ' '\n' | paste -sd, -)
LOADLOG=$(mktemp)
shopper load "$BASE" --seconds 75 --max-requests 20000 --workers 4 > "$LOADLOG" 2>&1 &
LOADPID=$!
sleep 3
log "scaling shop 3 -> 5 under load"
t0=$SECONDS
"${DC[@]}" up -d --no-recreate --no-deps --scale shop=5 shop >/dev/null 2>&1
NR=$(shopper new-replica "$BASE" --known "$known" --timeout 90) || true
figure "new replica takes traffic after --scale: $(jqr 'd.get("seconds")' <<< "$NR")s after the scale command returned ($((SECONDS - t0))s incl. the command)"
check "a new replica took traffic after --scale shop=5" test "$(jqr 'd["ok"]' <<< "$NR")" = True
wait_healthy 5 && ok "5 shop replicas healthy" || bad "5 shop replicas not healthy"
# Prometheus finds replicas by DNS: the fifth is scraped without a config change
if "$ROOT/tests/cluster/observability.sh" -p "$P" targets 5; then ok "Prometheus follows --scale shop=5"; else bad "Prometheus does not follow --scale shop=5"; fi
sleep 5
log "scaling shop 5 -> 2 under load"
"${DC[@]}" up -d --no-recreate --no-deps --scale shop=2 shop >/dev/null 2>&1
wait_healthy 2 && ok "2 shop replicas healthy" || bad "2 shop replicas not healthy"
wait "$LOADPID" || true
L=$(cat "$LOADLOG")
rm -f "$LOADLOG"
echo "  load during scaling: $L"
check "zero failed requests while scaling 3->5->2 ($(jqr 'd["ok"]' <<< "$L") ok, $(jqr 'd["failed"]' <<< "$L") failed)" \
    test "$(jqr 'd["failed"]' <<< "$L")" = 0 -a "$(jqr 'd["ok"]' <<< "$L")" -gt 100
"${DC[@]}" up -d --no-recreate --no-deps --scale shop=3 shop >/dev/null 2>&1
wait_healthy 3 || bad "back to 3 replicas"

# ------------------------------------------ monitoring and central logs (issue 13)
# every target up, --scale followed, recording rules answering, one request's
# lines found by its id (compose/logs.sh), kept across a collector restart
if "$ROOT/tests/cluster/observability.sh" -p "$P" all; then ok "observability checks (tests/cluster/observability.sh)"; else bad "observability checks (tests/cluster/observability.sh)"; fi

mem_at_rest "3 shop replicas"

# ------------------------------------------------- frozen replica (manager)
# The contract: a replica frozen with `docker pause` and left frozen is out of
# rotation within 2 s and, within 15 s, no longer paused (the manager restarts
# it), while the shop keeps answering. Load with checkouts runs throughout; a
# probe through nginx after the 2 s mark must never meet the frozen replica
# (each probe has a 2 s budget; a request stuck on it would take 15 s).
log "frozen replica: docker pause one of three replicas under load, leave it paused"
MGR="http://127.0.0.1:$DISTSHOP_MANAGER_PORT"
# the manager keeps nothing that matters: restarted, it knows everything again within seconds
docker restart "$("${DC[@]}" ps -q manager)" >/dev/null
t0=$SECONDS
alive=0
while [ $((SECONDS - t0)) -lt 30 ]; do
    alive=$(curl -fsS --max-time 2 "$MGR/state" 2>/dev/null | jqr 'sum(1 for r in d["replicas"] if r["verdict"] == "alive")' 2>/dev/null || echo 0)
    [ "$alive" = 3 ] && break
    sleep 0.5
done
figure "manager restarted: tracking 3 live replicas again $((SECONDS - t0)) s after docker restart returned"
check "the manager, restarted, tracks 3 replicas, all alive (got $alive)" test "$alive" = 3
LOADLOG=$(mktemp)
shopper load "$BASE" --seconds 25 --max-requests 30000 --workers 3 --checkouts > "$LOADLOG" 2>&1 &
LOADPID=$!
sleep 4
# sed, not head: head leaves at the first line, and a Go program (docker, the compose v2
# plugin) killed by SIGPIPE on its next write fails the pipeline (docker reports 255)
VICTIM=$("${DC[@]}" ps -q shop | sed -n 1p)
docker pause "$VICTIM" >/dev/null
t0=$(date +%s.%N)
FREED=$(mktemp)
( # when did it stop being paused (the manager's restart)? polled from the start
    for _ in $(seq 1 150); do
        if [ "$(docker inspect -f '{{.State.Paused}}' "$VICTIM" 2>/dev/null || echo gone)" != true ]; then
            python3 -c "print(round($(date +%s.%N) - $t0, 1))" > "$FREED"
            break
        fi
        sleep 0.1
    done
) &
FREEDPID=$!
sleep 2
slow=0 probes=0
# the clock read by bash itself (EPOCHREALTIME, µs): a python start per probe took ~1 s on a
# loaded machine and left too few probes in the 4 s window
t0us=$(python3 -c "print(int($t0 * 1000000))")
while ((${EPOCHREALTIME/./} - t0us < 6000000)); do
    probes=$((probes + 1))
    [ "$(curl -sS --max-time 2 -o /dev/null -w '%{http_code}' "$BASE/api/me" 2>/dev/null)" = 401 ] || slow=$((slow + 1))
done
wait "$FREEDPID" || true
unpaused=$(cat "$FREED")
rm -f "$FREED"
wait "$LOADPID" || true
L=$(cat "$LOADLOG")
rm -f "$LOADLOG"
echo "  load during the freeze: $L"
ACT=$(curl -fsS --max-time 3 "$MGR/state" | jqr '[a["action"] + ": " + a["reason"] for a in d["actions"]][:3]')
echo "  manager's last actions: $ACT"
figure "frozen replica (docker pause, left paused): no longer paused ${unpaused:-never} s after the pause; $probes probes from 2 s to 6 s, $slow over 2 s or failed; load $(jqr 'd["failed"]' <<< "$L") failed of $(jqr 'd["sent"]' <<< "$L"), slowest $(jqr 'd["max_latency_ms"]' <<< "$L") ms"
check "frozen replica out of rotation within 2 s ($probes probes from 2 s to 6 s after the pause, $slow slow or failed)" \
    test "$slow" = 0 -a "$probes" -gt 5
check "frozen replica no longer paused within 15 s (${unpaused:-never} s)" \
    python3 -c "import sys; sys.exit(0 if '$unpaused' and float('$unpaused') <= 15 else 1)"
check "zero failed requests while a replica was frozen ($(jqr 'd["ok"]' <<< "$L") ok, $(jqr 'd["failed"]' <<< "$L") failed)" \
    test "$(jqr 'd["failed"]' <<< "$L")" = 0 -a "$(jqr 'd["ok"]' <<< "$L")" -gt 100
check "frozen replica: every checkout key gave exactly one order" test "$(jqr 'd["checkout"]["consistent"]' <<< "$L")" = True
check "the manager logged why it restarted the replica" grep -q "no heartbeat for" <<< "$ACT"
wait_healthy 3 || bad "3 healthy replicas after the frozen replica"

# ------------------------------------------------------- failover under load
# load_with_fault NAME KILL_AFTER RESTART_AFTER CONTAINER: bounded load with a
# checkout worker (idempotent retries with the same key); the container is
# killed (-9) and started again; prints the load's JSON.
load_with_fault() {
    local out c=$4
    out=$(mktemp)
    shopper load "$BASE" --seconds 35 --max-requests 30000 --workers 3 --checkouts > "$out" 2>&1 &
    local pid=$!
    sleep "$2"
    docker kill -s KILL "$c" >/dev/null
    sleep "$3"
    docker start "$c" >/dev/null # `docker kill` disables the restart policy: start it as a supervisor would
    wait "$pid" || true
    cat "$out"
    rm -f "$out"
}

log "failover: kill -9 the writer galera-1 under load, restart it 20 s later"
F=$(load_with_fault db 6 20 "$("${DC[@]}" ps -q galera-1)")
echo "  $F" | cut -c1-1500
figure "writer failover (kill -9 galera-1 under load): $(jqr 'd["failed"]' <<< "$F") failed of $(jqr 'd["sent"]' <<< "$F") requests, slowest $(jqr 'd["max_latency_ms"]' <<< "$F") ms; checkout attempts failed $(jqr 'd["checkout"]["attempts_failed"]' <<< "$F")"
# Observed 0 failures in most runs and 3 of 4,677 in one (503s of requests
# caught on a pooled connection to the dead node during HAProxy's 1-1.6 s
# detection): allow at most 1 %, and require a full journey right after.
check "writer failover: at most 1 % failed requests ($(jqr 'd["failed"]' <<< "$F") of $(jqr 'd["sent"]' <<< "$F"))" \
    test "$(jqr 'int(d["failed"] * 100 <= d["sent"] and d["ok"] > 100)' <<< "$F")" = 1
check "writer failover: every checkout key gave exactly one order ($(jqr 'd["checkout"]["keys_ok"]' <<< "$F") keys, $(jqr 'd["checkout"]["orders_in_account"]' <<< "$F") orders)" \
    test "$(jqr 'd["checkout"]["consistent"]' <<< "$F")" = True
wait_healthy 3 || bad "stack healthy again after the writer failover"
J3=$(shopper journey "$BASE" --replicas 3) || true
check "a full shopper journey works after the writer failover" test "$(jqr 'd["ok"]' <<< "$J3")" = True

# the Redis master that holds the load user's session is not known in
# advance: kill the first master; failures (if its slots were in use) are
# reported, lost or doubled orders are not tolerated
M=$(redis_cli cluster nodes | tr -d '\r' | grep master | grep -v fail | grep -o 'redis-[1-6]' | sed -n 1p)
log "failover: kill -9 Redis master $M under load, restart it 12 s later"
F=$(load_with_fault redis 6 12 "$("${DC[@]}" ps -q "$M")")
echo "  $F" | cut -c1-1500
figure "Redis master failover (kill -9 $M under load): $(jqr 'd["failed"]' <<< "$F") failed of $(jqr 'd["sent"]' <<< "$F") requests, slowest $(jqr 'd["max_latency_ms"]' <<< "$F") ms; checkout attempts failed $(jqr 'd["checkout"]["attempts_failed"]' <<< "$F")"
check "Redis failover: at most 1 % failed requests ($(jqr 'd["failed"]' <<< "$F") of $(jqr 'd["sent"]' <<< "$F"))" \
    test "$(jqr 'int(d["failed"] * 100 <= d["sent"] and d["ok"] > 100)' <<< "$F")" = 1
check "Redis failover: every checkout key gave exactly one order ($(jqr 'd["checkout"]["keys_ok"]' <<< "$F") keys, $(jqr 'd["checkout"]["orders_in_account"]' <<< "$F") orders)" \
    test "$(jqr 'd["checkout"]["consistent"]' <<< "$F")" = True
redis_nodes() { redis_cli cluster nodes | tr -d '\r' | sed 's/myself,//'; }
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
    info=$(redis_cli cluster info | tr -d '\r')
    nodes=$(redis_nodes)
    if grep -q '^cluster_state:ok' <<< "$info" && [ "$(grep -c ' master ' <<< "$nodes")" = 3 ] &&
        [ "$(grep -c ' slave ' <<< "$nodes")" = 3 ]; then
        break
    fi
    sleep 1
done
nodes=$(redis_nodes)
check "Redis: $M is back as a replica, 3 masters + 3 replicas" \
    bash -c 'grep -q "$1.* slave " <<< "$2" && [ "$(grep -c " master " <<< "$2")" = 3 ]' _ "$M" "$nodes"

# ------------------------------------------- a real browser, a replica killed mid-journey
# tests/browser: headless Chromium (Debian's chromium + chromium-driver) walks a shopper's and
# an admin's journey through nginx; the replica that served the full cart is killed (docker
# kill) before the checkout and the same browser session must go on, served by the others;
# run.sh starts the killed container again and waits until Docker calls it healthy. Each of
# the journey's steps is a check here.
log "browser journey (tests/browser/run.sh --stack) through nginx, one replica killed mid-journey"
if [ -x "${CHROMIUM:-/usr/bin/chromium}" ] && [ -x "${CHROMEDRIVER:-/usr/bin/chromedriver}" ]; then
    t0=$SECONDS
    BJ=$(bash "$ROOT/tests/browser/run.sh" --stack "$BASE" --project "$P" 2>&1) && bjrc=0 || bjrc=$?
    while IFS= read -r line; do
        case "$line" in
        "ok   "*) ok "browser: ${line#ok   }" ;;
        "FAIL "*) bad "browser: ${line#FAIL }" ;;
        *) echo "  $line" ;;
        esac
    done <<< "$BJ"
    figure "browser journey through nginx with a replica killed: $((SECONDS - t0))s (incl. the killed replica healthy again)"
    check "browser journey: every step passed, the killed replica restarted and healthy (exit $bjrc)" test "$bjrc" = 0
    wait_healthy 3 || bad "3 healthy shop replicas after the browser journey"
else
    bad "browser journey: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
fi

# ------------------------------------------------ the control room (issue 13)
# its JSON contract, read-only without the operator token, then a real browser:
# three replica tiles up, the operator kills one from its tile, the tile goes
# down and comes back, a request id sent through nginx found in the central logs
CR="http://127.0.0.1:$DISTSHOP_CONTROL_PORT"
status_ok() { # the contract's shape, and a settled stack: 3 replicas up, one writer, 3+3 Redis
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert len(d["replicas"]) == 3 and all({"name", "state"} <= r.keys() for r in d["replicas"])
assert all(r["state"] == "up" for r in d["replicas"]), d["replicas"]
assert len(d["galera"]) == 3 and all({"name", "state", "cluster_size", "writer"} <= g.keys() for g in d["galera"])
assert sum(1 for g in d["galera"] if g["writer"] is True) == 1, d["galera"]
assert len(d["redis"]) == 6 and sorted(r["role"] for r in d["redis"]) == ["master"] * 3 + ["replica"] * 3, d["redis"]
assert all({"name", "state"} <= e.keys() for e in d["edge"]) and len(d["edge"]) >= 2
assert {"rps", "errors_per_s", "p99_ms"} <= d["load"].keys()
' "$(curl -fsS --max-time 5 "$CR/api/status" || echo '{}')" 2>/dev/null
}
# (a replica the browser journey killed may still read "starting" for a beat or two)
t0=$SECONDS
until status_ok || [ $((SECONDS - t0)) -ge 45 ]; do sleep 2; done
check "control room GET /api/status: replicas, galera, redis, edge and load as the contract says" status_ok
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"action":"replica-kill","target":"shop-1"}' "$CR/api/faults") || code=000
check "control room POST /api/faults without the operator token: 401 (got $code), nothing killed" test "$code" = 401
if [ -x "${CHROMIUM:-/usr/bin/chromium}" ] && [ -x "${CHROMEDRIVER:-/usr/bin/chromedriver}" ]; then
    log "control room in a real browser (tests/browser/run.sh --control-room)"
    t0=$SECONDS
    CJ=$(bash "$ROOT/tests/browser/run.sh" --control-room "$CR" --stack "$BASE" 2>&1) && cjrc=0 || cjrc=$?
    while IFS= read -r line; do
        case "$line" in
        "ok   "*) ok "control room: ${line#ok   }" ;;
        "FAIL "*) bad "control room: ${line#FAIL }" ;;
        *) echo "  $line" ;;
        esac
    done <<< "$CJ"
    figure "control room in a browser, a replica killed from its tile and back: $((SECONDS - t0))s"
    check "control room browser test: every step passed (exit $cjrc)" test "$cjrc" = 0
    wait_healthy 3 || bad "3 healthy shop replicas after the control room's kill"
fi

# -------------------------------------------------------- whole-stack restarts
orders_before=$(shopper orders "$BASE" "$EMAIL" "$PASSWORD" | jqr 'd["order_ids"]')
# a few more orders, so there is something recent to lose
EXTRA_EMAILS=()
for i in 1 2 3; do
    J2=$(shopper journey "$BASE" --replicas 1) || true
    [ "$(jqr 'd["ok"]' <<< "$J2")" = True ] || bad "extra journey $i: $J2"
    EXTRA_EMAILS+=("$(jqr 'd["email"]' <<< "$J2") $(jqr 'd["password"]' <<< "$J2") $(jqr 'd["order_id"]' <<< "$J2")")
done
total_before=$(galera_sql 1 "SELECT COUNT(*) FROM orders")

verify_orders() { # label
    local after e p o t
    after=$(shopper orders "$BASE" "$EMAIL" "$PASSWORD" | jqr 'd["order_ids"]') || after="error"
    check "$1: the journey's orders are all there ($after)" test "$after" = "$orders_before"
    for x in "${EXTRA_EMAILS[@]}"; do
        read -r e p o <<< "$x"
        after=$(shopper orders "$BASE" "$e" "$p" | jqr 'd["order_ids"]') || after="error"
        check "$1: order $o of $e is there" grep -qw "$o" <<< "$after"
    done
    for n in 1 2 3; do
        t=$(galera_sql "$n" "SELECT COUNT(*) FROM orders" 2>&1 || true)
        check "$1: galera-$n has all $total_before orders (has $t)" test "$t" = "$total_before"
    done
}

log "whole-stack restart: ${COMPOSE[*]} stop, then up -d"
"${DC[@]}" stop >/dev/null 2>&1
t0=$SECONDS
"${DC[@]}" up -d 2>&1 | grep -v '^Starting\|^Creating\|^$' || true
if wait_healthy 3; then
    figure "up -> healthy, warm (after a clean stop of everything): $((SECONDS - t0))s"
    ok "stack healthy again after a clean whole-stack stop"
else
    bad "stack not healthy after a clean whole-stack stop"
fi
verify_orders "after clean restart"

if [ "$SKIP_KILL" = 0 ]; then
    log "whole-stack crash: kill -9 every container, then up -d"
    # shellcheck disable=SC2046
    docker kill -s KILL $("${DC[@]}" ps -q) >/dev/null 2>&1 || true
    t0=$SECONDS
    "${DC[@]}" up -d 2>&1 | grep -v '^Starting\|^Creating\|^$' || true
    if wait_healthy 3; then
        figure "up -> healthy after kill -9 of everything: $((SECONDS - t0))s"
        ok "stack healthy again after kill -9 of every container"
    else
        bad "stack not healthy after kill -9 of every container"
    fi
    verify_orders "after kill -9 restart"
    info=$(redis_cli cluster info | tr -d '\r')
    check "redis cluster ok after the crash" grep -q '^cluster_state:ok' <<< "$info"
fi
