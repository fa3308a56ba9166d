#!/bin/bash
# Creates compose/.env for THIS install: the non-secret defaults of
# compose/env.defaults plus freshly generated random secrets (from
# /dev/urandom, hex). Every install gets its own; none is ever committed
# (compose/.env is git-ignored).
#
#   compose/init_env.sh [ENV_FILE]        (default: compose/.env)
#
# Never overwrites: when ENV_FILE exists it keeps every line as it is and only
# appends a secret that is missing there (a variable added by a newer version),
# and tightens the file's mode to 600. One exception, said in its output: the
# manager's old default port, DISTSHOP_MANAGER_PORT=9090, becomes 9091 (the
# manager moved so that Prometheus has 9090; an .env made before kept the old
# value and would publish the manager on Prometheus's port). Safe to run any number of times;
# compose/offline-prepare.sh and every test script that starts a stack run it.
# Rotating a secret: docs/security.md ("Per-install secrets").
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEFAULTS="$HERE/env.defaults"
ENV_FILE="${1:-$HERE/.env}"

log() { echo "init_env: $*" >&2; }

# NAME:BYTES, each value BYTES random bytes as hex (2 x BYTES characters)
SECRETS=(
    SHOP_DB_PASSWORD:16        # MariaDB user `shop` (also in the shop's database URL)
    SHOP_SESSION_KEY:32        # signs session cookies and CSRF tokens (64 characters)
    SHOP_ADMIN_PASSWORD:12     # admin@distshop.local (24 characters)
    GALERA_SST_PASSWORD:16     # MariaDB user `sst` (mariabackup state transfer)
    GALERA_HEALTH_PASSWORD:16  # MariaDB user `health` (galera-health)
    DISTSHOP_MANAGER_TOKEN:24  # bearer token of the heartbeat manager's API (48 characters)
    DISTSHOP_CONTROL_TOKEN:24  # the control room's operator token (48 characters)
)
# the values the repository shipped before issue 11: known to everyone
DEMO_VALUES='shop-demo-password|demo-session-key-change-me-0123456789abcdef|admin-demo-password|sst-demo-password|health-demo-password|demo-manager-token-change-me'

random_hex() { # BYTES
    local v
    v=$(od -An -v -tx1 -N"$1" /dev/urandom | tr -d ' \n')
    [ "${#v}" = $(($1 * 2)) ] || { log "could not read $1 bytes from /dev/urandom"; exit 1; }
    printf '%s' "$v"
}

has_value() { # NAME FILE: a non-empty assignment of NAME
    grep -Eq "^[[:space:]]*(export[[:space:]]+)?$1=.+" "$2"
}

secrets_block() { # the lines for every secret missing from FILE ("" = all)
    local s name file=${1:-}
    for s in "${SECRETS[@]}"; do
        name=${s%%:*}
        if [ -n "$file" ] && has_value "$name" "$file"; then continue; fi
        printf '%s=%s\n' "$name" "$(random_hex "${s#*:}")"
    done
}

show() { # a path relative to the current directory when it is below it
    case "$1" in "$PWD"/*) echo "${1#"$PWD"/}" ;; *) echo "$1" ;; esac
}

if [ -e "$ENV_FILE" ]; then
    missing=$(secrets_block "$ENV_FILE")
    if [ -n "$missing" ]; then
        {
            echo
            echo "# added by compose/init_env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ): secrets missing above"
            printf '%s\n' "$missing"
        } >> "$ENV_FILE"
        log "$(show "$ENV_FILE") exists; kept every line, appended new secret(s): $(cut -d= -f1 <<< "$missing" | paste -sd' ')"
    else
        log "$(show "$ENV_FILE") exists; not touched (it holds this install's secrets)"
    fi
    chmod 600 "$ENV_FILE"
    if grep -Eq '^[[:space:]]*(export[[:space:]]+)?DISTSHOP_MANAGER_PORT=9090[[:space:]]*$' "$ENV_FILE"; then
        sed -i -E 's/^([[:space:]]*(export[[:space:]]+)?DISTSHOP_MANAGER_PORT=)9090[[:space:]]*$/\19091/' "$ENV_FILE"
        chmod 600 "$ENV_FILE"
        log "$(show "$ENV_FILE"): DISTSHOP_MANAGER_PORT=9090 (the old default) changed to 9091: the manager moved there, 9090 is Prometheus's"
    fi
    if grep -Eq "=($DEMO_VALUES)\$" "$ENV_FILE"; then
        log "WARNING: $(show "$ENV_FILE") still holds the old shared demo secrets of the repository;"
        log "  replace them (docs/security.md, \"Rotating a secret\") before anyone else can reach the stack"
    fi
    exit 0
fi

[ -r "$DEFAULTS" ] || { log "missing $DEFAULTS"; exit 1; }
dir=$(dirname "$ENV_FILE")
[ -d "$dir" ] || { log "no directory $dir"; exit 1; }
umask 077
tmp=$(mktemp "$dir/.env.new.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
    echo "# compose/.env: THIS install's configuration and SECRETS. Never commit or share it"
    echo "# (git ignores it). Made by compose/init_env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) from"
    echo "# compose/env.defaults plus random secrets; change values here. docs/security.md"
    echo
    # env.defaults without its header (the comment block up to the first blank line)
    awk 'body { print } /^$/ { body = 1 }' "$DEFAULTS"
    echo
    echo "# ---- secrets of this install (random; compose/init_env.sh)"
    secrets_block ""
} > "$tmp"
chmod 600 "$tmp"
# a hard link fails when ENV_FILE appeared meanwhile: never overwrite one
if ! ln "$tmp" "$ENV_FILE" 2>/dev/null; then
    log "$(show "$ENV_FILE") appeared meanwhile; not touched"
    exit 0
fi
log "wrote $(show "$ENV_FILE"): new random secrets for this install (mode 600)."
log "  It is SECRET: never commit or share it (git ignores it). The admin account is"
log "  $(sed -n 's/^SHOP_ADMIN_EMAIL=//p' "$ENV_FILE" | tail -n1), its password is SHOP_ADMIN_PASSWORD in that file."
