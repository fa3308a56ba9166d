#!/bin/bash
# The failover suite, as CI runs it: the compose stack under a checked load,
# one fault per scenario, then every invariant on the database (all three
# Galera nodes compared). A shorter load than a demo, to fit CI's budget.
#
#   tests/failover/run.sh            (after compose/offline-prepare.sh, which
#                                     builds the simulator too)
#
# Environment (defaults): FAILOVER_SCENARIOS="shop-kill shop-stop
#   shop-freeze shop-sigstop shop-db-hang shop-500 ramp rolling-restart scale galera-kill
#   redis-master-kill db-kill",
#   SHOPPERS=30 DURATION=45 FAULT_AT=10, DISTSHOP_PROJECT=distshop-fo-ci,
#   DISTSHOP_HTTP_PORT=18480 (HTTPS on +2); always DISTSHOP_REGISTER_LIMIT=0.
#   Fails when a hard target is missed (see tests/failover/figures.py); soft
#   targets are reported. The stack and its volumes are removed at the end,
#   also on failure.
# (down() runs from a trap, which shellcheck 0.9 takes for unreachable code)
# shellcheck disable=SC2317
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DISTSHOP_PROJECT="${DISTSHOP_PROJECT:-distshop-fo-ci}"
export DISTSHOP_HTTP_PORT="${DISTSHOP_HTTP_PORT:-18480}"
export DISTSHOP_MANAGER_PORT="${DISTSHOP_MANAGER_PORT:-$((DISTSHOP_HTTP_PORT + 1))}"
export DISTSHOP_HTTPS_PORT="${DISTSHOP_HTTPS_PORT:-$((DISTSHOP_HTTP_PORT + 2))}"
# Prometheus, the control room and the log collector's UDP port: this
# stack's own, beside its others (docs/observability.md)
export DISTSHOP_PROMETHEUS_PORT="${DISTSHOP_PROMETHEUS_PORT:-$((DISTSHOP_HTTP_PORT + 3))}"
export DISTSHOP_CONTROL_PORT="${DISTSHOP_CONTROL_PORT:-$((DISTSHOP_HTTP_PORT + 4))}"
export DISTSHOP_LOG_PORT="${DISTSHOP_LOG_PORT:-$((DISTSHOP_HTTP_PORT + 5))}"
# the simulator registers every shopper from one address (Docker's gateway)
export DISTSHOP_REGISTER_LIMIT=0 DISTSHOP_HASH_PER_CLIENT=1000
export SHOPPERS="${SHOPPERS:-30}" DURATION="${DURATION:-45}" FAULT_AT="${FAULT_AT:-10}"
export REPORTS="${REPORTS:-$ROOT/reports/failover-ci}"
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
compose_select || exit 2
compose_env_ready "$ROOT" || exit 2
echo "[$(date -u +%H:%M:%S)] failover suite: $(compose_version)"
read -r -a SCENARIOS <<< "${FAILOVER_SCENARIOS:-shop-kill shop-stop shop-freeze shop-sigstop shop-db-hang shop-500 ramp rolling-restart scale galera-kill redis-master-kill db-kill}"

down() {
    echo "[$(date -u +%H:%M:%S)] failover suite: removing project $DISTSHOP_PROJECT (volumes too)"
    "${COMPOSE[@]}" -p "$DISTSHOP_PROJECT" -f "$ROOT/compose/docker-compose.yml" down -v --remove-orphans >/dev/null 2>&1 || true
}
trap down EXIT

rc=0
bash "$ROOT/tests/failover/scenario.sh" "${SCENARIOS[@]}" || rc=$?
echo
echo "== failover suite figures (${REPORTS})"
for s in "${SCENARIOS[@]}"; do
    f="$REPORTS/latest-$s/figures.md"
    if [ -f "$f" ]; then
        grep -E '^\| (failed requests|lost|write stall|recovered|rejoin|every 5xx|new replicas)|^RESULT' "$f" | sed "s/^/  $s: /"
    else
        echo "  $s: no figures (scenario did not complete)"
    fi
done
exit "$rc"
