#!/usr/bin/env bash
# tests/api-fuzz/run.sh — property-based fuzzing of the JSON API against its own OpenAPI
# document (`GET /api/openapi.json`, generated from the handlers' annotations) with schemathesis.
#
# Why this exists: the document says what every operation accepts and answers; schemathesis
# generates requests from it (schema examples, boundary values, random and invalid data, chains of
# calls) and checks each answer: no 5xx, only documented status codes and content types, and every
# body valid against its documented schema — so every 4xx is the documented error shape
# `{"error":{"code","message","fields"?}}`. Three runs: anonymous (every operation), a logged-in
# customer with orders (all but login/logout, which would end its session), and the admin (the
# admin operations).
#
# Usage: bash tests/api-fuzz/run.sh [BASE_URL]
#   no BASE_URL  build the shop (`cargo build -p shop`), start it embedded (a temporary SQLite
#                database, in-process sessions) on a free loopback port, stop it at the end
#   BASE_URL     fuzz a running shop instead, e.g. http://127.0.0.1:8080 (through nginx); the
#                admin's password comes from API_FUZZ_ADMIN_PASSWORD, else compose/.env
# Environment:
#   API_FUZZ_SEED          schemathesis seed (default 1: the same cases every run)
#   API_FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 100)
#   API_FUZZ_CHECKS        schemathesis checks (default: see CHECKS below; `all` adds
#                          positive_data_acceptance, negative_data_rejection, unsupported_method,
#                          which flag what the document cannot say, see docs/api.md)
#   API_FUZZ_WORKERS       concurrent schemathesis workers (default 1: more trip a thread-safety
#                          bug of hypothesis 6 ("AST constructor recursion depth mismatch"))
#   API_FUZZ_ADMIN_EMAIL / API_FUZZ_ADMIN_PASSWORD  the admin account (embedded: created so)
#   API_FUZZ_CACERT        CA bundle for an https:// BASE_URL (e.g. the stack's self-signed certificate)
#   API_FUZZ_KEEP          set: keep the work directory (logs, schemathesis reports) even when clean
#   CARGO_TARGET_DIR       where the shop is built (default ./target)
# Output: one summary line per run; on a failure schemathesis' report of it (with a curl
# command that reproduces it) and the directory with every log.
# Exit status: 0 when every run is clean, 1 when schemathesis found a failure (or a run could not
# be set up), 2 on bad usage.
# Functions below are called through a trap, which shellcheck 0.9 mistakes for unreachable code.
# shellcheck disable=SC2317
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

usage() {
    sed -n '/^# Usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

BASE=""
case "${1:-}" in
-h | --help)
    usage
    exit 0
    ;;
"") ;;
http://* | https://*) BASE="${1%/}" ;;
*)
    echo "tests/api-fuzz/run.sh: BASE_URL must start with http:// or https://, got '$1'" >&2
    usage >&2
    exit 2
    ;;
esac
if (($# > 1)); then
    usage >&2
    exit 2
fi

SEED="${API_FUZZ_SEED:-1}"
MAX_EXAMPLES="${API_FUZZ_MAX_EXAMPLES:-100}"
WORKERS="${API_FUZZ_WORKERS:-1}"
ADMIN_EMAIL="${API_FUZZ_ADMIN_EMAIL:-admin@distshop.local}"
ADMIN_PASSWORD="${API_FUZZ_ADMIN_PASSWORD:-}"
# The goals: no 5xx, only documented statuses and content types, every body (4xx: ApiError) as
# documented; and required headers, the documented response headers, and 401 without the
# session where the document says an operation needs it.
CHECKS="${API_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,missing_required_header,ignored_auth}"

# curl (the set-up requests) trusts the same CA
[ -n "${API_FUZZ_CACERT:-}" ] && export CURL_CA_BUNDLE="$API_FUZZ_CACERT"
for tool in schemathesis curl python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "tests/api-fuzz/run.sh: '$tool' not found (schemathesis: pip install schemathesis)" >&2
        exit 1
    }
done

WORK="$(mktemp -d /tmp/distshop-api-fuzz.XXXXXX)"
SHOP_PID=""
FAILED=0
STARTED=$(date +%s)

cleanup() {
    local rc=$?
    if [[ -n "$SHOP_PID" ]] && kill -0 "$SHOP_PID" 2>/dev/null; then
        kill "$SHOP_PID" 2>/dev/null || true
        wait "$SHOP_PID" 2>/dev/null || true
    fi
    if ((rc == 0 && FAILED == 0)) && [[ -z "${API_FUZZ_KEEP:-}" ]]; then
        rm -rf "$WORK"
    else
        echo "api-fuzz: logs kept in $WORK"
    fi
}
trap cleanup EXIT

die() {
    echo "api-fuzz: $*" >&2
    FAILED=1
    exit 1
}

# ------------------------------------------------------------- the shop --

if [[ -z "$BASE" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    echo "api-fuzz: building the shop (cargo build -p shop)"
    (cd "$ROOT" && cargo build --quiet -p shop) || die "the build failed"
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    BASE="http://127.0.0.1:$PORT"
    ADMIN_PASSWORD="${ADMIN_PASSWORD:-fuzz-admin-$RANDOM$RANDOM}"
    # its own directory: nothing of the run lands in the repository
    (cd "$WORK" && exec env SHOP_LISTEN="127.0.0.1:$PORT" \
        SHOP_DATABASE_URL="sqlite://$WORK/fuzz.db?mode=rwc" \
        SHOP_ADMIN_EMAIL="$ADMIN_EMAIL" SHOP_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        SHOP_WORKERS=2 RUST_LOG=warn \
        "$CARGO_TARGET_DIR/debug/shop" >"$WORK/shop.log" 2>&1) &
    SHOP_PID=$!
    for _ in $(seq 1 120); do
        curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break
        kill -0 "$SHOP_PID" 2>/dev/null || die "the shop stopped at start: $(tail -n 5 "$WORK/shop.log")"
        sleep 0.5
    done
    curl -fsS "$BASE/readyz" >/dev/null 2>&1 || die "the shop is not ready after 60 s"
    echo "api-fuzz: embedded shop on $BASE (pid $SHOP_PID)"
else
    if [[ -z "$ADMIN_PASSWORD" && -f "$ROOT/compose/.env" ]]; then
        ADMIN_PASSWORD=$(sed -n 's/^SHOP_ADMIN_PASSWORD=//p' "$ROOT/compose/.env" | tail -n 1)
        email=$(sed -n 's/^SHOP_ADMIN_EMAIL=//p' "$ROOT/compose/.env" | tail -n 1)
        ADMIN_EMAIL="${API_FUZZ_ADMIN_EMAIL:-${email:-$ADMIN_EMAIL}}"
    fi
    [[ -n "$ADMIN_PASSWORD" ]] || die "no admin password: set API_FUZZ_ADMIN_PASSWORD"
    curl -fsS "$BASE/api/openapi.json" >/dev/null || die "no API document at $BASE/api/openapi.json"
fi

# ------------------------------------------------------------ sessions --

# api JAR METHOD PATH [BODY [HEADER]]: a JSON API call with a cookie jar; prints the body.
api() {
    local jar=$1 method=$2 path=$3 body=${4:-"{}"} extra=${5:-}
    local args=(-sS -X "$method" -b "$jar" -c "$jar" -H 'Content-Type: application/json' --data "$body")
    [[ -n "$extra" ]] && args+=(-H "$extra")
    curl "${args[@]}" -w '\n%{http_code}' "$BASE$path"
}

# expect CODE OUTPUT: the status (last line of api's output) is CODE.
expect() {
    local want=$1 out=$2
    [[ "${out##*$'\n'}" == "$want" ]] || die "setup: expected $want, got: ${out//$'\n'/ }"
}

# The session cookie in a curl jar, as a Cookie header value.
cookie_of() {
    local value
    value=$(awk '$6 == "distshop_session" { v = $7 } END { print v }' "$1")
    [[ -n "$value" ]] || die "setup: no session cookie in $1"
    echo "distshop_session=$value"
}

CUSTOMER_JAR="$WORK/customer.jar"
ADMIN_JAR="$WORK/admin.jar"
email="fuzz-$(date +%s)-$RANDOM@example.org"
expect 201 "$(api "$CUSTOMER_JAR" POST /api/register "{\"email\":\"$email\",\"password\":\"fuzz-password-123\",\"name\":\"Fuzz Customer\"}")"
expect 200 "$(api "$CUSTOMER_JAR" POST /api/login "{\"email\":\"$email\",\"password\":\"fuzz-password-123\"}")"
# Orders to find: one left placed, one confirmed, one cancelled; and a line in the cart.
product=$(curl -fsS "$BASE/api/products?per_page=100" |
    python3 -c 'import json, sys; print(next(p["id"] for p in json.load(sys.stdin)["items"] if p["stock"] >= 10))')
orders=()
for i in 1 2 3; do
    expect 200 "$(api "$CUSTOMER_JAR" POST /api/cart/items "{\"product_id\":$product,\"quantity\":1}")"
    out=$(api "$CUSTOMER_JAR" POST /api/orders "{}" "Idempotency-Key: fuzz-setup-$i-$RANDOM$RANDOM")
    expect 201 "$out"
    orders+=("$(python3 -c 'import json, sys; print(json.loads(sys.argv[1].rsplit("\n", 1)[0])["id"])' "$out")")
done
expect 200 "$(api "$CUSTOMER_JAR" POST "/api/orders/${orders[2]}/cancel")"
expect 200 "$(api "$CUSTOMER_JAR" POST /api/cart/items "{\"product_id\":$product,\"quantity\":2}")"
expect 200 "$(api "$ADMIN_JAR" POST /api/login "{\"email\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}")"
expect 200 "$(api "$ADMIN_JAR" POST "/api/admin/orders/${orders[1]}/confirm")"
CUSTOMER_COOKIE=$(cookie_of "$CUSTOMER_JAR")
ADMIN_COOKIE=$(cookie_of "$ADMIN_JAR")

# --------------------------------------------------------------- fuzzing --

# fuzz NAME [SCHEMATHESIS ARGS...]: one schemathesis run; a summary line; its failures in full.
fuzz() {
    local name=$1 start rc=0
    shift
    local dir="$WORK/$name"
    mkdir -p "$dir"
    start=$(date +%s)
    (cd "$dir" && schemathesis run "$BASE/api/openapi.json" \
        --checks "$CHECKS" \
        --max-examples "$MAX_EXAMPLES" \
        --seed "$SEED" \
        --generation-database none \
        --workers "$WORKERS" \
        --request-timeout 20 \
        --no-color \
        --report junit --report-dir "$dir/report" \
        ${API_FUZZ_CACERT:+--tls-verify "$API_FUZZ_CACERT"} \
        "$@") >"$dir/schemathesis.log" 2>&1 || rc=$?
    local secs=$(($(date +%s) - start)) cases
    cases=$(sed -n 's/^ *\([0-9]\+ generated.*\)$/\1/p' "$dir/schemathesis.log" | tail -n 1)
    if ((rc == 0)); then
        echo "api-fuzz: $name: PASS (${cases:-no count}; seed $SEED, ${secs}s)"
    else
        FAILED=1
        echo "api-fuzz: $name: FAIL, schemathesis exit $rc (${cases:-no count}; seed $SEED, ${secs}s)"
        # the failures (each with a curl command that reproduces it) and the summary
        if grep -qE '^=+ (FAILURES|ERRORS) =+$' "$dir/schemathesis.log"; then
            sed -n '/^=* \(FAILURES\|ERRORS\) =*$/,$p' "$dir/schemathesis.log" | cut -c1-2000
        else
            tail -n 40 "$dir/schemathesis.log"
        fi
    fi
}

# Against a shared stack (BASE_URL given) the admin run creates and edits products with whatever
# schemathesis makes up (a product named "0" in category "0" sorts first); the suites after this
# one (the browser journey) expect the shop's own catalog. So: the products as they were before,
# and after the run every edited one written back (its fields and its stock) and every new one
# hidden.
catalog() { # catalog snapshot|restore FILE
    python3 - "$1" "$2" "$BASE" "$ADMIN_COOKIE" <<'PY'
import json, os, ssl, sys, urllib.request
mode, path, base, cookie = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=os.environ.get("API_FUZZ_CACERT") or None)
FIELDS = ("name", "description", "category", "price_cents", "hidden")
def call(method, url, body=None, key=None):
    headers = {"Cookie": cookie, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    req = urllib.request.Request(base + url, method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=20, context=ctx) as r:
        return json.load(r)
products, page = {}, 1
while True:
    d = call("GET", f"/api/admin/products?per_page=200&page={page}")
    products.update({p["id"]: {k: p.get(k) for k in FIELDS + ("stock",)} for p in d["items"]})
    if page * d["per_page"] >= d["total"] or not d["items"]:
        break
    page += 1
if mode == "snapshot":
    json.dump({str(k): v for k, v in products.items()}, open(path, "w"))
    sys.exit(0)
before = {int(k): v for k, v in json.load(open(path)).items()}
restored = hidden = stocked = 0
failed = []
for pid, now in sorted(products.items()):
    want = before.get(pid) or dict(now, hidden=True)
    try:
        fields = {k: v for k, v in want.items() if k in FIELDS and v is not None}
        if fields != {k: v for k, v in now.items() if k in FIELDS and v is not None}:
            call("PUT", f"/api/admin/products/{pid}", fields)
            if pid in before:
                restored += 1
            else:
                hidden += 1
        delta = want["stock"] - now["stock"]
        if pid in before and delta != 0:
            call("POST", f"/api/admin/products/{pid}/stock", {"delta": delta, "note": "api-fuzz: put back"},
                 key=f"api-fuzz-{os.getpid()}-{pid}")
            stocked += 1
    except Exception as e:  # one product that cannot be put back does not stop the others
        failed.append(f"#{pid}: {e}")
print(f"api-fuzz: catalog put back after the admin run: {restored} edited products restored, "
      f"{stocked} stocks restored, {hidden} new ones hidden")
if failed:
    print("api-fuzz: could not put back: " + "; ".join(failed[:10]))
    sys.exit(1)
PY
}
if [[ -z "$SHOP_PID" ]]; then
    catalog snapshot "$WORK/catalog.json" || die "setup: could not read the products as the admin"
fi

fuzz anonymous
fuzz customer -H "Cookie: $CUSTOMER_COOKIE" --generation-with-security-parameters false \
    --exclude-operation-id login --exclude-operation-id logout
fuzz admin -H "Cookie: $ADMIN_COOKIE" --generation-with-security-parameters false \
    --include-path-regex '^/api/(admin/|me$)'
if [[ -z "$SHOP_PID" ]]; then
    catalog restore "$WORK/catalog.json" || {
        FAILED=1
        echo "api-fuzz: could not put the catalog back after the admin run"
    }
fi

if [[ -n "$SHOP_PID" ]] && ! kill -0 "$SHOP_PID" 2>/dev/null; then
    FAILED=1
    echo "api-fuzz: the shop died during the run: $(tail -n 5 "$WORK/shop.log")"
fi
total=$(($(date +%s) - STARTED))
if ((FAILED == 0)); then
    echo "api-fuzz: OK, 3 runs clean against $BASE in ${total}s"
else
    echo "api-fuzz: FAILED in ${total}s"
fi
exit "$FAILED"
