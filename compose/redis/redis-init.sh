#!/bin/sh
# One-shot: form the Redis Cluster (3 masters + 3 replicas) from redis-1..6,
# unless it is formed already. Idempotent: running it again on a formed
# cluster only verifies it. Exits non-zero if the cluster is not healthy
# within REDIS_INIT_TIMEOUT_SECONDS.
set -eu
NODES="${REDIS_NODES:-redis-1 redis-2 redis-3 redis-4 redis-5 redis-6}"
PORT="${REDIS_PORT:-6379}"
TIMEOUT="${REDIS_INIT_TIMEOUT_SECONDS:-120}"
REPLICAS="${REDIS_CLUSTER_REPLICAS:-1}"
deadline=$(( $(date +%s) + TIMEOUT ))

log() { echo "redis-init: $*" >&2; }
expired() { [ "$(date +%s)" -ge "$deadline" ]; }
rcli() { h=$1; shift; timeout 5 redis-cli -h "$h" -p "$PORT" "$@"; }
info_field() { rcli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }

# 1. every node answers
for n in $NODES; do
    until [ "$(rcli "$n" ping 2>/dev/null)" = PONG ]; do
        expired && { log "node $n does not answer PING"; exit 1; }
        sleep 1
    done
done
count=$(echo $NODES | wc -w)

# 2. formed already? (any node knowing more than itself means a cluster was
#    created before: never create a second one, just wait for it to be whole)
formed=0
for n in $NODES; do
    k=$(info_field "$n" cluster_known_nodes)
    if [ "${k:-1}" -gt 1 ]; then formed=1; fi
done

if [ "$formed" -eq 0 ]; then
    addrs=""
    for n in $NODES; do
        ip=$(getent ahostsv4 "$n" | awk 'NR==1{print $1}')
        [ -n "$ip" ] || { log "cannot resolve $n"; exit 1; }
        addrs="$addrs $ip:$PORT"
    done
    log "creating cluster from$addrs with $REPLICAS replica(s) per master"
    # shellcheck disable=SC2086
    timeout 60 redis-cli --cluster create $addrs --cluster-replicas "$REPLICAS" --cluster-yes
else
    log "cluster already formed; verifying"
fi

# 3. wait until every node agrees the cluster is whole
for n in $NODES; do
    until [ "$(info_field "$n" cluster_state)" = ok ] \
        && [ "$(info_field "$n" cluster_known_nodes)" = "$count" ] \
        && [ "$(info_field "$n" cluster_slots_assigned)" = 16384 ]; do
        expired && { log "cluster not healthy on $n: $(rcli "$n" cluster info | tr -d '\r' | tr '\n' ' ')"; exit 1; }
        sleep 1
    done
done
masters=$(rcli "$(echo $NODES | cut -d' ' -f1)" cluster nodes | grep -c master || true)
log "cluster ok: $count nodes, $masters masters, 16384 slots assigned"
