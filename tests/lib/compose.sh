# shellcheck shell=bash
# Sourced by the cluster, failover and Galera scripts: which Compose to run.
#
#   . tests/lib/compose.sh
#   compose_select || exit 2      # sets COMPOSE=(docker compose) or (docker-compose)
#   compose_env_ready "$ROOT" || exit 2   # compose/.env (this install's secrets) exists
#   DC=("${COMPOSE[@]}" -p "$P" -f "$ROOT/compose/docker-compose.yml")
#
# DISTSHOP_COMPOSE picks one: `v2` (the `docker compose` plugin), `v1` (the
# `docker-compose` 1.29 program), or unset: v2 when the plugin answers, else
# v1. Most users have only one of the two (Docker Desktop and Docker's own
# packages ship v2; Debian bookworm ships 1.29), and the stack must work with
# both, so nothing in these scripts may depend on which one runs: containers
# are found by their compose labels, never by their names (v1 names them
# project_service_1, v2 project-service-1).

compose_select() {
    local want="${DISTSHOP_COMPOSE:-auto}"
    case "$want" in
    v2 | "docker compose")
        docker compose version >/dev/null 2>&1 || {
            echo "DISTSHOP_COMPOSE=v2 but 'docker compose' is not installed" >&2
            return 1
        }
        COMPOSE=(docker compose)
        ;;
    v1 | docker-compose)
        command -v docker-compose >/dev/null 2>&1 || {
            echo "DISTSHOP_COMPOSE=v1 but docker-compose is not installed" >&2
            return 1
        }
        COMPOSE=(docker-compose)
        ;;
    auto)
        if docker compose version >/dev/null 2>&1; then
            COMPOSE=(docker compose)
        elif command -v docker-compose >/dev/null 2>&1; then
            COMPOSE=(docker-compose)
        else
            echo "neither 'docker compose' (v2) nor docker-compose (1.29) is installed" >&2
            return 1
        fi
        ;;
    *)
        echo "DISTSHOP_COMPOSE must be v1 or v2, not '$want'" >&2
        return 1
        ;;
    esac
}

# compose_version: one line naming the Compose in use, for logs and figures.
compose_version() {
    "${COMPOSE[@]}" version 2>/dev/null | head -n1
}

# container_label CID: a container's name without the project, the same under
# v1 and v2: shop-2 (replica 2 of shop), galera-1 (a service that is one node).
container_label() {
    local svc num
    read -r svc num < <(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.container-number"}}' "$1" 2>/dev/null) || return 1
    case "$svc" in
    *[0-9]) echo "$svc" ;;
    *) echo "$svc-$num" ;;
    esac
}

# compose_env_ready ROOT: compose/.env holds this install's secrets and is
# never committed; a fresh clone has none, and compose then refuses to start
# ("no secrets for this install"). Every script that starts a stack or reads
# compose/.env calls this first: it makes one (compose/init_env.sh) if missing.
compose_env_ready() {
    local root=$1
    [ -s "$root/compose/.env" ] && return 0
    "$root/compose/init_env.sh" || {
        echo "could not create $root/compose/.env (compose/init_env.sh)" >&2
        return 1
    }
}

# env_value ROOT NAME: NAME's value in compose/.env (the last assignment), for
# the scripts that need one secret; never print it
env_value() {
    sed -n "s/^$2=//p" "$1/compose/.env" | tail -n1
}
