#!/bin/bash
# Configuration checks that need no running stack (seconds; run by .ci/run):
# every install gets its own secrets, and the compose files refuse to start
# without them (security issue 11).
#
#   tests/config/run.sh
#
# * compose/init_env.sh, run into two scratch files: both mode 600, every
#   secret present, long enough, hex, and different between the two (and from
#   the demo values the repository once shipped); run again: nothing changes;
#   a secret removed is added back, the rest kept;
# * compose/.env is git-ignored and not tracked; env.defaults holds no secret;
# * `compose config` of compose/docker-compose.yml without secrets (only
#   env.defaults) fails with "no secrets for this install: run
#   compose/init_env.sh"; with a generated file it passes;
# * the same for compose/stack.yml with `docker stack config` (when this
#   Docker has it): refused without secrets, and with them the values arrive
#   intact (a '-' in a `${VAR:?message}` would make `docker stack` take the
#   message's tail for the value);
# * every `${VAR:?...}` in both files names compose/init_env.sh and has no '-'.
# Nothing is started; compose/.env of this checkout is neither read nor written.
# (The checks hand values to `bash -c '...'` as arguments, on purpose.)
# shellcheck disable=SC2016
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
PASS=0 FAIL=0
SECRETS=(SHOP_DB_PASSWORD SHOP_SESSION_KEY SHOP_ADMIN_PASSWORD GALERA_SST_PASSWORD GALERA_HEALTH_PASSWORD DISTSHOP_MANAGER_TOKEN DISTSHOP_CONTROL_TOKEN)
DEMO='shop-demo-password|demo-session-key-change-me-0123456789abcdef|admin-demo-password|sst-demo-password|health-demo-password|demo-manager-token-change-me'
WORK=$(mktemp -d /tmp/distshop-config.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

log() { echo "[$(date -u +%H:%M:%S)] config: $*"; }
check() { # check "label" command...
    local label=$1
    shift
    if "$@"; then PASS=$((PASS + 1)); log "PASS: $label"; else FAIL=$((FAIL + 1)); log "FAIL: $label"; fi
}
val() { sed -n "s/^$1=//p" "$2" | tail -n1; }
# the environment without any of the secrets (as on a fresh machine)
UNSET=()
for s in "${SECRETS[@]}"; do UNSET+=(-u "$s"); done
clean_env() { env "${UNSET[@]}" "$@"; }

# ------------------------------------------------------------ init_env.sh
mkdir -p "$WORK/a" "$WORK/b"
"$ROOT/compose/init_env.sh" "$WORK/a/.env" 2> "$WORK/a.log"
"$ROOT/compose/init_env.sh" "$WORK/b/.env" 2> "$WORK/b.log"
check "init_env.sh says where it wrote and that it is secret" \
    bash -c 'grep -q "wrote .*a/.env" "$1" && grep -qi "secret" "$1"' _ "$WORK/a.log"
check "the file is mode 600" test "$(stat -c %a "$WORK/a/.env")" = 600
problems=""
for s in "${SECRETS[@]}"; do
    a=$(val "$s" "$WORK/a/.env") b=$(val "$s" "$WORK/b/.env")
    min=16
    case "$s" in SHOP_SESSION_KEY) min=48 ;; DISTSHOP_MANAGER_TOKEN | DISTSHOP_CONTROL_TOKEN) min=32 ;; esac
    [ "${#a}" -ge "$min" ] || problems+=" $s:${#a}<$min"
    [[ "$a" =~ ^[0-9a-f]+$ ]] || problems+=" $s:not-hex"
    [ "$a" != "$b" ] || problems+=" $s:same-in-both"
    grep -Eqx "$DEMO" <<< "$a" && problems+=" $s:demo-value"
done
check "two runs give two different sets of secrets, each long enough and hex${problems:+ (${problems# })}" test -z "$problems"
check "the non-secret defaults are copied (COMPOSE_PROJECT_NAME=distshop)" test "$(val COMPOSE_PROJECT_NAME "$WORK/a/.env")" = distshop
sum=$(sha256sum < "$WORK/a/.env")
"$ROOT/compose/init_env.sh" "$WORK/a/.env" 2> "$WORK/a2.log"
check "a second run changes nothing and says so" \
    bash -c '[ "$(sha256sum < "$1")" = "$2" ] && grep -q "not touched" "$3"' _ "$WORK/a/.env" "$sum" "$WORK/a2.log"
key=$(val SHOP_SESSION_KEY "$WORK/b/.env")
grep -v '^GALERA_SST_PASSWORD=' "$WORK/b/.env" > "$WORK/b/.env.tmp" && cat "$WORK/b/.env.tmp" > "$WORK/b/.env"
"$ROOT/compose/init_env.sh" "$WORK/b/.env" 2>/dev/null
check "a missing secret is added, the others are kept" \
    bash -c '[ -n "$(sed -n "s/^GALERA_SST_PASSWORD=//p" "$1")" ] && [ "$(sed -n "s/^SHOP_SESSION_KEY=//p" "$1")" = "$2" ]' _ "$WORK/b/.env" "$key"
leaked=""
for s in "${SECRETS[@]}"; do grep -q "^$s=" "$ROOT/compose/env.defaults" && leaked+=" $s"; done
check "compose/env.defaults (committed) holds no secret${leaked:+ (has:$leaked)}" test -z "$leaked"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    check "compose/.env is not tracked by git" bash -c '! git -C "$1" ls-files --error-unmatch compose/.env >/dev/null 2>&1' _ "$ROOT"
    check "compose/.env is git-ignored" git -C "$ROOT" check-ignore -q compose/.env
fi

# ------------------------------------------------------- the compose files
bad_refs=""
for f in compose/docker-compose.yml compose/stack.yml; do
    while IFS= read -r ref; do
        msg=${ref#*:?}
        [[ "$msg" == *compose/init_env.sh* && "$msg" != *-* ]] || bad_refs+=" $f:$ref"
    done < <(grep -v '^[[:space:]]*#' "$ROOT/$f" | grep -o '\${[A-Z_]*:?[^}]*}')
    for s in "${SECRETS[@]}"; do
        # the Swarm stack has no control room (docs/observability.md)
        [ "$f:$s" = compose/stack.yml:DISTSHOP_CONTROL_TOKEN ] && continue
        grep -q "\${$s:?" "$ROOT/$f" || bad_refs+=" $f:$s-not-required"
        # any use of a secret without :? would start with an empty value
        grep -oE "\\\$\\{$s(:[-+][^}]*)?\\}" "$ROOT/$f" >/dev/null && bad_refs+=" $f:$s-optional-use"
    done
done
check "every secret in both compose files is \${VAR:?...} naming compose/init_env.sh, no '-' in the message${bad_refs:+ (${bad_refs# })}" test -z "$bad_refs"

if compose_select 2>/dev/null; then
    log "compose: $(compose_version)"
    out=$(cd "$WORK" && clean_env "${COMPOSE[@]}" --env-file "$ROOT/compose/env.defaults" \
        -f "$ROOT/compose/docker-compose.yml" config -q 2>&1) && rc=0 || rc=$?
    check "compose config without secrets fails, saying how to make them (exit $rc: $(grep -o 'no secrets for this install[^"}]*' <<< "$out" | head -n1))" \
        bash -c '[ "$1" != 0 ] && grep -q "no secrets for this install: run compose/init_env.sh" <<< "$2"' _ "$rc" "$out"
    out=$(cd "$WORK" && clean_env "${COMPOSE[@]}" --env-file "$WORK/a/.env" \
        -f "$ROOT/compose/docker-compose.yml" config 2>&1) && rc=0 || rc=$?
    pw=$(val SHOP_DB_PASSWORD "$WORK/a/.env")
    check "compose config with a generated file passes and uses its secrets (exit $rc)" \
        bash -c '[ "$1" = 0 ] && grep -q "mysql://shop:$2@db:3306/distshop" <<< "$3"' _ "$rc" "$pw" "$out"
else
    log "neither Compose installed: compose file checks skipped"
fi
if docker stack config --help >/dev/null 2>&1; then
    out=$(clean_env docker stack config -c "$ROOT/compose/stack.yml" 2>&1) && rc=0 || rc=$?
    check "docker stack config of stack.yml without secrets fails, saying how to make them (exit $rc)" \
        bash -c '[ "$1" != 0 ] && grep -q "no secrets in the environment: run compose/init_env.sh" <<< "$2"' _ "$rc" "$out"
    # shellcheck disable=SC1091
    out=$(set -a && . "$WORK/a/.env" && set +a && docker stack config -c "$ROOT/compose/stack.yml" 2>&1) && rc=0 || rc=$?
    check "with the generated secrets exported it passes and they arrive intact (exit $rc)" \
        bash -c '[ "$1" = 0 ] && grep -q "MARIADB_PASSWORD: $2\$" <<< "$3" && grep -q "SHOP_SESSION_KEY: $4\$" <<< "$3"' \
        _ "$rc" "$pw" "$out" "$(val SHOP_SESSION_KEY "$WORK/a/.env")"
else
    log "this Docker has no 'docker stack config': stack.yml checks skipped"
fi

echo "config: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
