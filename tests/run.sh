#!/usr/bin/env bash
# tests/run.sh — THE project's test command: `bash tests/run.sh`.
#
# Why this exists: one command that a developer and CI both run, so "green
# here" means "green in CI". It checks formatting and lints, runs the whole
# workspace test suite on the embedded backends (SQLite + in-process
# sessions), then runs the SAME suite again against real MariaDB + a real
# Redis Cluster (started by tests/backends/start.sh, loopback only), which is
# what the shop runs on in production.
#
# Usage: bash tests/run.sh [--embedded-only | --backends-only] [--stop] [--no-browser] [-- ARGS]
#   --embedded-only  fmt, clippy, the embedded test run, the black-box
#                    security probe (tests/security/run.sh) and the browser
#                    journey (tests/browser/run.sh); no backends
#   --backends-only  only start the backends and run the suite against them
#   --stop           stop the backends at the end (default: leave them running
#                    for quick reruns; with CI=true they are always stopped)
#   --no-browser     leave out the browser journey (headless Chromium against
#                    the embedded shop); the summary says it was left out.
#                    Without this flag a missing chromium/chromium-driver is
#                    a failed phase, never a silent skip
#   -- ARGS          passed on to both `cargo test --workspace` runs
#                    (e.g. `-- cart` to run only tests matching "cart")
#
# Every phase runs even if an earlier one failed (except the backend test run,
# which needs the backends); a summary at the end lists each phase's result.
# Exit status: 0 when every phase passed, 1 otherwise, 2 on bad usage.
# Functions below are called through a wrapper or a trap, which shellcheck
# 0.9 mistakes for unreachable code.
# shellcheck disable=SC2317
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DISTSHOP_BACKENDS_DIR="${DISTSHOP_BACKENDS_DIR:-/tmp/distshop-backends}"
BACKENDS_ENV="$DISTSHOP_BACKENDS_DIR/env.sh"

usage() {
    sed -n '/^# Usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

RUN_EMBEDDED=1
RUN_BACKENDS=1
STOP_AT_END=0
RUN_BROWSER=1
CARGO_TEST_ARGS=()
while (($# > 0)); do
    case "$1" in
    --embedded-only) RUN_BACKENDS=0 ;;
    --backends-only) RUN_EMBEDDED=0 ;;
    --stop) STOP_AT_END=1 ;;
    --no-browser) RUN_BROWSER=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        CARGO_TEST_ARGS=("$@")
        break
        ;;
    *)
        echo "tests/run.sh: unknown argument '$1'" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done
if ((RUN_EMBEDDED == 0 && RUN_BACKENDS == 0)); then
    echo "tests/run.sh: --embedded-only and --backends-only exclude each other" >&2
    exit 2
fi
if [[ "${CI:-}" == true ]]; then
    STOP_AT_END=1
fi

# ------------------------------------------------------------- toolchain --

if ! command -v cargo >/dev/null 2>&1 && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 ||
    {
        echo "tests/run.sh: cargo not found: install the Rust toolchain (rustup)" >&2
        exit 1
    }
if ((RUN_EMBEDDED)); then
    for tool in fmt clippy; do
        cargo "$tool" --version >/dev/null 2>&1 ||
            {
                echo "tests/run.sh: 'cargo $tool' missing: rustup component add ${tool/fmt/rustfmt}" >&2
                exit 1
            }
    done
fi

# ---------------------------------------------------------------- phases --

RULE="=============================================================================="
PHASE_NAMES=()
PHASE_RESULTS=()
PHASE_SECS=()
RUN_START=$(date +%s)

banner() {
    printf '\n%s\n== %s\n%s\n' "$RULE" "$*" "$RULE"
}

record() { # name result seconds
    PHASE_NAMES+=("$1")
    PHASE_RESULTS+=("$2")
    PHASE_SECS+=("$3")
}

# run_phase NAME CMD...: runs CMD under a banner and records PASS/FAIL.
run_phase() {
    local name=$1 start rc=0
    shift
    banner "$name"
    if ! declare -F "$1" >/dev/null; then
        echo "\$ $*"
    fi
    start=$(date +%s)
    "$@" || rc=$?
    local secs=$(($(date +%s) - start))
    if ((rc == 0)); then
        record "$name" PASS "$secs"
        echo "-- $name: PASS (${secs}s)"
    else
        record "$name" FAIL "$secs"
        echo "-- $name: FAIL (exit $rc, ${secs}s)"
    fi
    return "$rc"
}

stop_backends() {
    banner "stopping the backends"
    bash "$ROOT/tests/backends/stop.sh" || true
}

if ((RUN_BACKENDS && STOP_AT_END)); then
    trap stop_backends EXIT
fi

# The embedded run must not pick up backend URLs a developer may have exported.
embedded_cargo_test() {
    echo "\$ cargo test --workspace ${CARGO_TEST_ARGS[*]}  (SHOP_TEST_* unset)"
    env -u SHOP_TEST_DATABASE_URL -u SHOP_TEST_REDIS_URLS \
        cargo test --workspace "${CARGO_TEST_ARGS[@]}"
}

backends_cargo_test() {
    # shellcheck source=/dev/null
    . "$BACKENDS_ENV"
    echo "SHOP_TEST_DATABASE_URL=$SHOP_TEST_DATABASE_URL"
    echo "SHOP_TEST_REDIS_URLS=$SHOP_TEST_REDIS_URLS"
    echo "\$ cargo test --workspace ${CARGO_TEST_ARGS[*]}"
    cargo test --workspace "${CARGO_TEST_ARGS[@]}"
}

if ((RUN_EMBEDDED)); then
    run_phase "format (cargo fmt --check)" cargo fmt --all -- --check || true
    run_phase "lint (cargo clippy -D warnings)" \
        cargo clippy --workspace --all-targets -- -D warnings || true
    run_phase "test: embedded backends (SQLite + in-process sessions)" \
        embedded_cargo_test || true
    run_phase "security probe: embedded shop (tests/security/run.sh)" \
        bash "$ROOT/tests/security/run.sh" || true
    if ((RUN_BROWSER)); then
        run_phase "browser journey: headless Chromium, embedded shop (tests/browser/run.sh)" \
            bash "$ROOT/tests/browser/run.sh" || true
    else
        # asked for: shown in the summary, not counted as a failure
        record "browser journey: headless Chromium, embedded shop (tests/browser/run.sh)" "OFF" 0
        echo "tests/run.sh: --no-browser: the browser journey is left out"
    fi
fi

if ((RUN_BACKENDS)); then
    if run_phase "backends: MariaDB 127.0.0.1:3307 + Redis Cluster 127.0.0.1:7001-7006" \
        bash "$ROOT/tests/backends/start.sh"; then
        run_phase "test: real backends (MariaDB + Redis Cluster)" \
            backends_cargo_test || true
    else
        record "test: real backends (MariaDB + Redis Cluster)" SKIP 0
    fi
fi

# --------------------------------------------------------------- summary --

banner "summary"
failed=()
off=0
for i in "${!PHASE_NAMES[@]}"; do
    [[ "${PHASE_RESULTS[$i]}" != OFF ]] || off=$((off + 1))
    printf '  %-4s %5ss  %s\n' "${PHASE_RESULTS[$i]}" "${PHASE_SECS[$i]}" "${PHASE_NAMES[$i]}"
    if [[ "${PHASE_RESULTS[$i]}" != PASS && "${PHASE_RESULTS[$i]}" != OFF ]]; then
        failed+=("${PHASE_NAMES[$i]}")
    fi
done
total=$(($(date +%s) - RUN_START))
if ((RUN_BACKENDS && !STOP_AT_END)) && [[ -f "$BACKENDS_ENV" ]]; then
    echo "  (backends left running: bash tests/backends/stop.sh to stop them)"
fi
if ((${#failed[@]} == 0)); then
    left_out=""
    ((off == 0)) || left_out=" ($off left out on request)"
    echo "tests/run.sh: OK, all $((${#PHASE_NAMES[@]} - off)) phases passed in ${total}s$left_out"
    exit 0
fi
echo "tests/run.sh: FAILED in ${total}s: ${#failed[@]} of ${#PHASE_NAMES[@]} phases did not pass"
exit 1
