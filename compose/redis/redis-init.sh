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

# 2. Form it, or finish forming it. The first count/(REPLICAS+1) NODES become masters,
#    and replica k of master i is node (masters * k + i): with the defaults
#    redis-4 replicates redis-1, redis-5 redis-2, redis-6 redis-3. The pairing
#    is fixed (not left to redis-cli's choice) because a deployment over
#    several machines places a master and its replica on different machines
#    (compose/stack.yml, docs/cluster.md). Every step is skipped when done:
#    a node that knows others is in the cluster already, so running this again
#    (or after it was interrupted half-way) never creates a second cluster.
count=$(echo "$NODES" | wc -w)
nmasters=$((count / (REPLICAS + 1)))
[ $((nmasters * (REPLICAS + 1))) -eq "$count" ] || { log "$count nodes cannot make masters with $REPLICAS replica(s) each"; exit 1; }
nth() { echo "$NODES" | awk -v i="$1" '{print $i}'; }
alone() { [ "$(info_field "$1" cluster_known_nodes)" = 1 ]; }
addr() {
    ip=$(getent ahostsv4 "$1" | awk 'NR==1{print $1}')
    [ -n "$ip" ] || { log "cannot resolve $1"; exit 1; }
    echo "$ip:$PORT"
}

any_formed=0
for n in $NODES; do alone "$n" || any_formed=1; done
if [ "$any_formed" -eq 0 ]; then
    maddrs=""
    i=1
    while [ "$i" -le "$nmasters" ]; do maddrs="$maddrs $(addr "$(nth "$i")")"; i=$((i + 1)); done
    log "creating cluster: masters$maddrs"
    # shellcheck disable=SC2086
    timeout 60 redis-cli --cluster create $maddrs --cluster-replicas 0 --cluster-yes
else
    log "cluster already formed; verifying"
fi

# replicas that are not in the cluster yet join it, each as replica of its master
k=1
while [ "$k" -le "$REPLICAS" ]; do
    i=1
    while [ "$i" -le "$nmasters" ]; do
        m=$(nth "$i")
        r=$(nth $((nmasters * k + i)))
        if alone "$r"; then
            until [ "$(info_field "$m" cluster_state)" = ok ]; do
                expired && { log "master $m not ready for its replica $r"; exit 1; }
                sleep 1
            done
            id=$(rcli "$m" cluster myid | tr -d '\r')
            log "adding $r as replica of $m ($id)"
            timeout 60 redis-cli --cluster add-node "$(addr "$r")" "$(addr "$m")" \
                --cluster-slave --cluster-master-id "$id"
        fi
        i=$((i + 1))
    done
    k=$((k + 1))
done

# 3. wait until every node agrees the cluster is whole
for n in $NODES; do
    until [ "$(info_field "$n" cluster_state)" = ok ] \
        && [ "$(info_field "$n" cluster_known_nodes)" = "$count" ] \
        && [ "$(info_field "$n" cluster_slots_assigned)" = 16384 ]; do
        expired && { log "cluster not healthy on $n: $(rcli "$n" cluster info | tr -d '\r' | tr '\n' ' ')"; exit 1; }
        sleep 1
    done
done
masters=$(rcli "$(nth 1)" cluster nodes | grep -c master || true)
log "cluster ok: $count nodes, $masters masters, 16384 slots assigned"
