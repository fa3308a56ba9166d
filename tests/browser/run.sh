#!/usr/bin/env bash
# tests/browser/run.sh — the real-browser end-to-end test: a shopper's and an admin's journey
# (tests/browser, `browser-journey`) in headless Chromium driven over WebDriver by chromedriver.
#
# Usage: bash tests/browser/run.sh [--stack URL [--project NAME]] [--screenshots DIR]
#        bash tests/browser/run.sh --control-room URL --stack URL [--token T] [--screenshots DIR]
#   (no --stack)      builds the shop and the journey (debug), starts an embedded shop (SQLite +
#                     in-process sessions, a temporary directory, a free 127.0.0.1 port) and
#                     runs the journey against it
#   --stack URL       runs it through nginx of a running compose stack (e.g.
#                     http://127.0.0.1:8080), killing the replica that served the full cart
#                     before the checkout (tests/browser/kill-replica.sh: docker kill); the
#                     browser session must go on, on the other replicas. At the end the killed
#                     container is started again and waited for until Docker calls it healthy.
#                     The admin's credentials come from compose/.env (SHOP_ADMIN_EMAIL,
#                     SHOP_ADMIN_PASSWORD) unless JOURNEY_ADMIN_EMAIL/JOURNEY_ADMIN_PASSWORD
#                     are set
#   --project NAME    the stack's compose project (where more than one stack runs, the replica
#                     to kill is looked for in this one only)
#   --screenshots DIR also write DIR/shop-*.png of the main pages (the README's pictures:
#                     `bash tests/browser/run.sh --screenshots docs/img`)
#   --control-room URL
#                     instead of the shop's journey, the control room's (`controlroom-journey`):
#                     three replica tiles up, operator login, kill one replica from its tile,
#                     the tile goes down and comes back up, a request with a known X-Request-Id
#                     through nginx (--stack URL) found in the page's log search (nginx's and a
#                     shop's lines). With --screenshots DIR: DIR/controlroom-*.png. The killed
#                     replica is started again by the manager (5 s later), not by this script
#   --token T         the operator token (default: DISTSHOP_CONTROL_TOKEN from compose/.env, or
#                     $CONTROL_TOKEN)
#
# Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver;
# CHROMIUM / CHROMEDRIVER override), python3 and curl. chromedriver gets a free port of its own;
# everything started here is stopped on every exit.
# Exit status: 0 when every step passed, 1 when one failed, 2 on bad usage or a missing tool.
# Functions below are called through a trap, which shellcheck 0.9 mistakes for unreachable code.
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/browser"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

usage() { sed -n '/^# Usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

STACK="" PROJECT="" SHOTS="" CONTROL="" TOKEN=""
while (($# > 0)); do
    case "$1" in
    --stack) STACK=${2:?--stack needs a URL}; shift ;;
    --project) PROJECT=${2:?--project needs a name}; shift ;;
    --screenshots) SHOTS=${2:?--screenshots needs a directory}; shift ;;
    --control-room) CONTROL=${2:?--control-room needs a URL}; shift ;;
    --token) TOKEN=${2:?--token needs a value}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "tests/browser/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

for tool in "$CHROMIUM" "$CHROMEDRIVER"; do
    if [[ ! -x "$tool" ]]; then
        echo "tests/browser/run.sh: $tool not found: apt-get install chromium chromium-driver" >&2
        exit 2
    fi
done
for tool in python3 curl; do
    command -v "$tool" >/dev/null || { echo "tests/browser/run.sh: $tool not found" >&2; exit 2; }
done
if [[ -n "$CONTROL" && -z "$STACK" ]]; then
    echo "tests/browser/run.sh: --control-room needs --stack URL (nginx, for the request-id search)" >&2
    exit 2
fi
if [[ -n "$STACK" && -z "$CONTROL" ]]; then
    command -v docker >/dev/null || { echo "tests/browser/run.sh: --stack needs docker" >&2; exit 2; }
fi

WORK=$(mktemp -d /tmp/distshop-browser.XXXXXX)
SHOP_PID="" DRIVER_PID=""
KILLED_FILE="$WORK/killed"
: >"$KILLED_FILE"

# restart_killed: `docker kill` disables the restart policy; start the container again as a
# supervisor would, and wait until Docker calls it healthy, so later tests see every replica.
restart_killed() {
    local id st deadline rc=0
    while read -r id; do
        [[ -n "$id" ]] || continue
        echo "browser: starting the killed replica again: docker start ${id:0:12}"
        docker start "$id" >/dev/null || { rc=1; continue; }
        deadline=$((SECONDS + 120))
        while ((SECONDS < deadline)); do
            st=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo gone)
            [[ "$st" == running/healthy || "$st" == running/none ]] && break
            sleep 1
        done
        echo "browser: replica ${id:0:12} is $st"
        [[ "$st" == running/healthy || "$st" == running/none ]] || rc=1
    done <"$KILLED_FILE"
    : >"$KILLED_FILE"
    return "$rc"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$DRIVER_PID" ]]; then
        # chromedriver leads its own process group (setsid): its Chromium goes with it
        kill -- "-$DRIVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$SHOP_PID" ]]; then kill "$SHOP_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    if [[ -s "$KILLED_FILE" ]]; then restart_killed || rc=1; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_url URL SECONDS LOGFILE: until URL answers 2xx
wait_url() {
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        curl -fsS --max-time 1 -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "browser: $1 did not answer within $2 s; last lines of $3:" >&2
    tail -n 20 "$3" >&2
    return 1
}

t0=$SECONDS
if [[ -n "$CONTROL" ]]; then
    if [[ -z "$TOKEN" ]]; then
        TOKEN=${CONTROL_TOKEN:-}
        if [[ -z "$TOKEN" && -s "$ROOT/compose/.env" ]]; then
            TOKEN=$(sed -n 's/^DISTSHOP_CONTROL_TOKEN=//p' "$ROOT/compose/.env" | tail -n1)
        fi
        [[ -n "$TOKEN" ]] || { echo "browser: no operator token: --token, CONTROL_TOKEN or compose/.env" >&2; exit 2; }
    fi
    echo "browser: cargo build -p browser-journey --bin controlroom-journey"
    (cd "$ROOT" && cargo build -q -p browser-journey --bin controlroom-journey)
    DPORT=$(free_port)
    setsid "$CHROMEDRIVER" --port="$DPORT" >"$WORK/chromedriver.log" 2>&1 &
    DRIVER_PID=$!
    wait_url "http://127.0.0.1:$DPORT/status" 30 "$WORK/chromedriver.log"
    CARGS=(--control-room "$CONTROL" --shop "$STACK" --webdriver "http://127.0.0.1:$DPORT" --chromium "$CHROMIUM")
    [[ -z "$SHOTS" ]] || CARGS+=(--screenshots "$SHOTS")
    echo "browser: ready after $((SECONDS - t0)) s; the control room at $CONTROL"
    rc=0
    CONTROL_TOKEN="$TOKEN" "$TARGET/debug/controlroom-journey" "${CARGS[@]}" || rc=$?
    echo "browser: control room $( ((rc == 0)) && echo OK || echo FAILED) in $((SECONDS - t0)) s (build and start included)"
    exit "$rc"
fi
packages=(-p browser-journey)
[[ -n "$STACK" ]] || packages+=(-p shop)
echo "browser: cargo build ${packages[*]}"
(cd "$ROOT" && cargo build -q "${packages[@]}")
JOURNEY="$TARGET/debug/browser-journey"

ARGS=()
if [[ -n "$STACK" ]]; then
    BASE=${STACK%/}
    if [[ -z "${JOURNEY_ADMIN_PASSWORD:-}" ]]; then
        [[ -s "$ROOT/compose/.env" ]] || { echo "browser: no compose/.env: the stack's admin password is unknown" >&2; exit 2; }
        JOURNEY_ADMIN_PASSWORD=$(sed -n 's/^SHOP_ADMIN_PASSWORD=//p' "$ROOT/compose/.env" | tail -n1)
        JOURNEY_ADMIN_EMAIL=${JOURNEY_ADMIN_EMAIL:-$(sed -n 's/^SHOP_ADMIN_EMAIL=//p' "$ROOT/compose/.env" | tail -n1)}
    fi
    export JOURNEY_ADMIN_PASSWORD
    ARGS+=(--admin-email "${JOURNEY_ADMIN_EMAIL:-admin@distshop.local}")
    export BROWSER_KILLED_FILE="$KILLED_FILE" DISTSHOP_BROWSER_PROJECT="$PROJECT"
    # the footer's replica name arrives as $1 (sh -c CMD kill-replica NAME)
    ARGS+=(--kill-replica "bash $(printf '%q' "$HERE/kill-replica.sh") \"\$1\"")
else
    PORT=$(free_port)
    export JOURNEY_ADMIN_PASSWORD="browser-journey-admin-pw"
    echo "browser: embedded shop on 127.0.0.1:$PORT (SQLite + in-process sessions, in $WORK)"
    (cd "$WORK" && exec env SHOP_LISTEN="127.0.0.1:$PORT" SHOP_DATABASE_URL="sqlite://$WORK/shop.db?mode=rwc" \
        SHOP_ADMIN_PASSWORD="$JOURNEY_ADMIN_PASSWORD" RUST_LOG=warn "$TARGET/debug/shop" serve) >"$WORK/shop.log" 2>&1 &
    SHOP_PID=$!
    BASE="http://127.0.0.1:$PORT"
    wait_url "$BASE/readyz" 60 "$WORK/shop.log"
fi

DPORT=$(free_port)
setsid "$CHROMEDRIVER" --port="$DPORT" >"$WORK/chromedriver.log" 2>&1 &
DRIVER_PID=$!
wait_url "http://127.0.0.1:$DPORT/status" 30 "$WORK/chromedriver.log"
[[ -z "$SHOTS" ]] || ARGS+=(--screenshots "$SHOTS")
echo "browser: ready after $((SECONDS - t0)) s; the journey against $BASE"

rc=0
"$JOURNEY" --base-url "$BASE" --webdriver "http://127.0.0.1:$DPORT" --chromium "$CHROMIUM" "${ARGS[@]}" || rc=$?
if ((rc != 0)) && [[ -n "$SHOP_PID" ]]; then
    echo "browser: last lines of the shop's log:"
    tail -n 15 "$WORK/shop.log"
fi
if [[ -s "$KILLED_FILE" ]]; then restart_killed || rc=1; fi
echo "browser: $( ((rc == 0)) && echo OK || echo FAILED) in $((SECONDS - t0)) s (build and start included)"
exit "$rc"
