#!/bin/bash
# galera-entrypoint: start one MariaDB Galera node and decide, on EVERY start,
# how it enters the cluster. No manual step is needed after a whole-cluster
# stop or crash, and at most one node ever bootstraps (no split brain).
#
#   empty datadir, bootstrap node, every peer reachable and empty
#       -> initialise, bootstrap a NEW cluster, create database and users
#   a peer is Synced+Primary (galera-health 200)
#       -> join it (IST, or SST with mariabackup)
#   every node reachable, none running, all still hold gvwstate.dat
#   (all were killed)          -> start all normally; pc.recovery re-forms the
#                                 last Primary Component by itself
#   every node reachable, none running, otherwise (clean stop, or a
#   pc.recovery attempt failed) -> the most advanced node (highest seqno, from
#                                 grastate.dat or `mariadbd --wsrep-recover`;
#                                 ties: safe_to_bootstrap=1, then list order)
#                                 bootstraps; the others join it
#   some node unreachable for GALERA_RECOVERY_GRACE_SECONDS
#                              -> only a node with safe_to_bootstrap=1 (it was
#                                 the last to leave) and no reachable peer
#                                 ahead of it may bootstrap; otherwise wait
#
# Nodes exchange their recovery state through galera-health (GET /recovery on
# :9200, served from $STATE), which starts first and runs beside mariadbd.
# GALERA_FORCE_BOOTSTRAP=1 is the operator's override for a node that must
# bootstrap although the rules above say wait (e.g. a node lost for good).
set -Eeuo pipefail

NODE="${GALERA_NODE_NAME:-$(hostname)}"
NODES="${GALERA_NODES:?GALERA_NODES must list the node names, e.g. galera-1,galera-2,galera-3}"
CLUSTER="${GALERA_CLUSTER_NAME:-distshop}"
BOOTSTRAP_NODE="${GALERA_BOOTSTRAP_NODE:-${NODES%%,*}}"
GRACE="${GALERA_RECOVERY_GRACE_SECONDS:-120}"
DISCONNECTED_RESTART="${GALERA_DISCONNECTED_RESTART_SECONDS:-30}"
JOIN_SERIALIZE="${GALERA_JOIN_SERIALIZE_SECONDS:-180}"
FORCE="${GALERA_FORCE_BOOTSTRAP:-0}"
HEALTH_PORT="${GALERA_HEALTH_PORT:-9200}"
SST_PASSWORD="${GALERA_SST_PASSWORD:?GALERA_SST_PASSWORD is required}"
HEALTH_PASSWORD="${GALERA_HEALTH_PASSWORD:?GALERA_HEALTH_PASSWORD is required}"
DB_NAME="${MARIADB_DATABASE:-distshop}"
DB_USER="${MARIADB_USER:-shop}"
DB_PASSWORD="${MARIADB_PASSWORD:?MARIADB_PASSWORD is required}"

DATADIR=/var/lib/mysql
STATE_DIR=/run/galera
STATE="$STATE_DIR/recovery.state"
REACHED="$STATE_DIR/reached-primary"
INIT_MARKER="$DATADIR/.distshop-init-incomplete"
ZERO_UUID=00000000-0000-0000-0000-000000000000

IFS=, read -r -a ALL_NODES <<< "$NODES"
PEERS=()
for n in "${ALL_NODES[@]}"; do [ "$n" = "$NODE" ] || PEERS+=("$n"); done

MYSQLD_PID=""
HEALTH_PID=""
MONITOR_PID=""
MODE=""

log() { echo "galera-entrypoint[$NODE] $(date -u +%H:%M:%S) $*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- helpers

# index of a node in GALERA_NODES (tie-break order)
node_index() {
    local i=0 n
    for n in "${ALL_NODES[@]}"; do
        [ "$n" = "$1" ] && { echo "$i"; return; }
        i=$((i + 1))
    done
    echo 99
}

# publish PHASE: what peers see at GET http://$NODE:9200/recovery
MY_UUID="" MY_SEQNO=-1 MY_SAFE=0 MY_GVW=0
publish() {
    printf 'node=%s\nphase=%s\nuuid=%s\nseqno=%s\nsafe_to_bootstrap=%s\ngvwstate=%s\n' \
        "$NODE" "$1" "$MY_UUID" "$MY_SEQNO" "$MY_SAFE" "$MY_GVW" > "$STATE.tmp"
    mv -f "$STATE.tmp" "$STATE"
}

field() { sed -n "s/^$1=//p" <<< "$2" | head -n1; }

peer_state() { curl -fsS --max-time 2 "http://$1:$HEALTH_PORT/recovery" 2>/dev/null || true; }
peer_healthy() { curl -fsS -o /dev/null --max-time 3 "http://$1:$HEALTH_PORT/" 2>/dev/null; }

any_peer_healthy() {
    local p
    for p in "${PEERS[@]}"; do
        if peer_healthy "$p"; then HEALTHY_PEER=$p; return 0; fi
    done
    return 1
}

# One joiner at a time: two nodes joining the same donor at once sometimes
# ended in "Receiving IST failed ... IST didn't contain all write sets" (seen
# with Galera 26.4.23 after whole-cluster restarts). Wait while another node
# is joining, or while a node earlier in GALERA_NODES is about to join too;
# never longer than JOIN_SERIALIZE seconds.
JOIN_WAIT_SINCE=""
my_turn_to_join() {
    local p ph me
    me=$(node_index "$NODE")
    JOIN_WAIT_SINCE=${JOIN_WAIT_SINCE:-$SECONDS}
    [ $((SECONDS - JOIN_WAIT_SINCE)) -lt "$JOIN_SERIALIZE" ] || return 0
    for p in "${PEERS[@]}"; do
        ph=$(field phase "$(peer_state "$p")")
        case "$ph" in
        joining) say "waiting for $p to finish joining"; return 1 ;;
        waiting | empty)
            if [ "$(node_index "$p")" -lt "$me" ]; then
                say "letting $p join first"
                return 1
            fi
            ;;
        esac
    done
    return 0
}

read_grastate() {
    local f="$DATADIR/grastate.dat"
    MY_UUID="" MY_SEQNO=-1 MY_SAFE=0
    if [ -f "$f" ]; then
        MY_UUID=$(sed -n 's/^uuid:[[:space:]]*//p' "$f" | head -n1)
        MY_SEQNO=$(sed -n 's/^seqno:[[:space:]]*//p' "$f" | head -n1)
        MY_SAFE=$(sed -n 's/^safe_to_bootstrap:[[:space:]]*//p' "$f" | head -n1)
    fi
    MY_SEQNO=${MY_SEQNO:--1}
    MY_SAFE=${MY_SAFE:-0}
    if [ -f "$DATADIR/gvwstate.dat" ]; then MY_GVW=1; else MY_GVW=0; fi
}

# After a crash grastate.dat says seqno -1: ask InnoDB for the real position.
recover_position() {
    local out="$STATE_DIR/wsrep-recover.log" pos
    rm -f "$out"
    log "seqno unknown (unclean stop): running mariadbd --wsrep-recover"
    mariadbd "${MYSQLD_ARGS[@]}" --wsrep-recover --log-error="$out" >/dev/null 2>&1 || true
    pos=$(sed -n 's/.*WSREP: Recovered position: *\([0-9a-f-]*:-\{0,1\}[0-9]*\).*/\1/p' "$out" | tail -n1)
    if [ -z "$pos" ]; then
        log "wsrep-recover found no position; its log:"
        cat "$out" >&2 || true
        return 1
    fi
    RECOVERED_POSITION=$pos
    MY_UUID=${pos%:*}
    MY_SEQNO=${pos##*:}
    log "recovered position $pos"
}

sql_escape() { printf '%s' "$1" | sed "s/'/''/g"; }

root_sql() { mariadb --protocol=socket -uroot -N -B -e "$1"; }

start_health() {
    GALERA_HEALTH_MYSQL_URL="mysql://health:${HEALTH_PASSWORD}@127.0.0.1:3306" \
    GALERA_HEALTH_LISTEN="0.0.0.0:$HEALTH_PORT" \
    GALERA_HEALTH_STATE_FILE="$STATE" \
        setpriv --reuid=mysql --regid=mysql --init-groups /usr/local/bin/galera-health &
    HEALTH_PID=$!
}

# Prometheus: Debian's mysqld exporter (0.14) on :9104, logged in as the
# node-local `health` user over 127.0.0.1 (that user has no privileges and
# needs none: SHOW GLOBAL STATUS is open to every user; which is also why the
# exporter runs here and not in a container of its own). Only the global
# status collector: the wsrep_* figures (cluster size, local state, flow
# control, queues), connections, queries; the other default collectors need
# privileges or add hundreds of series nobody reads (docs/observability.md).
# It runs for the container's whole life, also while mariadbd is down or
# joining (then mysql_up is 0), and is started again if it exits; it is not
# supervised like galera-health: a node works without it.
# GALERA_EXPORTER_PORT=0 turns it off.
EXPORTER_PORT="${GALERA_EXPORTER_PORT:-9104}"
start_exporter() {
    command -v prometheus-mysqld-exporter >/dev/null || return 0
    [ "$EXPORTER_PORT" != 0 ] || return 0
    local cnf="$STATE_DIR/exporter.cnf"
    # the password in a file only the exporter's user reads (not its
    # command line, which every process in the container sees)
    (umask 077 && printf '[client]\nuser=health\npassword=%s\nhost=127.0.0.1\nport=3306\n' \
        "$HEALTH_PASSWORD" > "$cnf")
    chown mysql:mysql "$cnf"
    (
        while :; do
            setpriv --reuid=mysql --regid=mysql --init-groups prometheus-mysqld-exporter \
                --config.my-cnf="$cnf" --web.listen-address=":$EXPORTER_PORT" \
                --collect.global_status --no-collect.global_variables \
                --no-collect.slave_status --no-collect.info_schema.innodb_cmp \
                --no-collect.info_schema.innodb_cmpmem \
                --no-collect.info_schema.query_response_time --log.level=warn || true
            sleep 5
        done
    ) &
}

health_check_local() {
    GALERA_HEALTH_MYSQL_URL="mysql://health:${HEALTH_PASSWORD}@127.0.0.1:3306" \
        /usr/local/bin/galera-health check >/dev/null 2>&1
}

on_term() {
    log "stop requested"
    [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null || true
    if [ -n "$MYSQLD_PID" ] && kill -0 "$MYSQLD_PID" 2>/dev/null; then
        kill -TERM "$MYSQLD_PID" 2>/dev/null || true
        wait "$MYSQLD_PID" 2>/dev/null || true
        log "mariadbd stopped"
    fi
    [ -n "$HEALTH_PID" ] && kill "$HEALTH_PID" 2>/dev/null || true
    exit 0
}
trap on_term TERM INT

MYSQLD_ARGS=(
    --user=mysql
    --wsrep-cluster-name="$CLUSTER"
    --wsrep-cluster-address="gcomm://$NODES"
    --wsrep-node-name="$NODE"
    --wsrep-sst-auth="sst:$SST_PASSWORD"
)

# start mariadbd in the background; MODE = join | bootstrap | pc-recovery
start_mysqld() {
    MODE=$1
    shift
    rm -f "$REACHED"
    log "starting mariadbd ($MODE) $*"
    case "$MODE" in
    bootstrap) publish bootstrapping ;;
    pc-recovery) publish pc-recovery ;;
    *) publish joining ;;
    esac
    mariadbd "${MYSQLD_ARGS[@]}" "$@" &
    MYSQLD_PID=$!
    # Monitor: publish "running" once the node is Synced+Primary, and act as
    # a watchdog: some failures (e.g. "Receiving IST failed, node restart
    # required") leave mariadbd running with the provider closed
    # (wsrep_connected=OFF) for ever. Compose does not restart an unhealthy
    # container, so stop mariadbd; the container exits and its restart policy
    # brings the node back to rejoin.
    (
        reached=0 off_since=""
        while :; do
            if [ "$reached" = 0 ] && health_check_local; then
                reached=1
                touch "$REACHED"
                publish running
                log "node is Synced and Primary"
            fi
            connected=$(root_sql "SHOW GLOBAL STATUS LIKE 'wsrep_connected'" 2>/dev/null | cut -f2 || true)
            if [ "$connected" = OFF ]; then
                off_since=${off_since:-$SECONDS}
                if [ $((SECONDS - off_since)) -ge "$DISCONNECTED_RESTART" ]; then
                    log "wsrep provider disconnected for ${DISCONNECTED_RESTART}s (node restart required): stopping mariadbd so the container restarts"
                    kill -TERM "$MYSQLD_PID" 2>/dev/null || true
                    exit 0
                fi
            else
                off_since=""
            fi
            sleep 2
        done
    ) &
    MONITOR_PID=$!
}

# wait for mariadbd (or galera-health) to exit, then exit the container
supervise() {
    local rc=0
    set +e
    wait -n "$MYSQLD_PID" "$HEALTH_PID"
    rc=$?
    set -e
    kill "$MONITOR_PID" 2>/dev/null || true
    if ! kill -0 "$MYSQLD_PID" 2>/dev/null; then
        wait "$MYSQLD_PID" 2>/dev/null
        rc=$?
        log "mariadbd exited with status $rc"
        if [ "$MODE" = pc-recovery ] && [ ! -f "$REACHED" ]; then
            # pc.recovery could not re-form the primary component: forget the
            # saved view so the next start goes through the seqno election.
            log "pc.recovery did not reach Primary; removing gvwstate.dat for the next attempt"
            rm -f "$DATADIR/gvwstate.dat"
        fi
    else
        log "galera-health exited; stopping mariadbd"
        kill -TERM "$MYSQLD_PID" 2>/dev/null || true
        wait "$MYSQLD_PID" 2>/dev/null || true
    fi
    kill "$HEALTH_PID" 2>/dev/null || true
    [ "$rc" -eq 0 ] && rc=1   # an exit we did not ask for is a failure
    exit "$rc"
}

# ------------------------------------------------------- the three outcomes

join_cluster() {
    # our saved Primary Component view is obsolete once a primary exists
    rm -f "$DATADIR/gvwstate.dat"
    local args=()
    [ -n "${RECOVERED_POSITION:-}" ] && args+=(--wsrep-start-position="$RECOVERED_POSITION")
    start_mysqld join "${args[@]}"
    supervise
}

bootstrap_existing() {
    log "bootstrapping the cluster from this node (uuid $MY_UUID seqno $MY_SEQNO): $1"
    sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$DATADIR/grastate.dat"
    rm -f "$DATADIR/gvwstate.dat"
    local args=(--wsrep-new-cluster)
    [ -n "${RECOVERED_POSITION:-}" ] && args+=(--wsrep-start-position="$RECOVERED_POSITION")
    start_mysqld bootstrap "${args[@]}"
    supervise
}

bootstrap_new() {
    log "initialising an empty datadir and bootstrapping a NEW cluster"
    rm -rf "${DATADIR:?}"/*
    # the marker lets a start after a failed initialisation start over
    touch "$INIT_MARKER"
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
        --auth-root-authentication-method=socket --wsrep-on=OFF >/dev/null
    start_mysqld bootstrap --wsrep-new-cluster
    local deadline=$((SECONDS + 120))
    until [ "$(root_sql "SHOW GLOBAL STATUS LIKE 'wsrep_ready'" 2>/dev/null | cut -f2)" = ON ]; do
        kill -0 "$MYSQLD_PID" 2>/dev/null || supervise
        [ $SECONDS -lt $deadline ] || die "new cluster not ready after 120 s"
        sleep 1
    done
    log "creating database $DB_NAME and users"
    root_sql "
        CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
        CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$(sql_escape "$DB_PASSWORD")';
        GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'%';
        CREATE USER IF NOT EXISTS 'health'@'127.0.0.1' IDENTIFIED BY '$(sql_escape "$HEALTH_PASSWORD")';
        CREATE USER IF NOT EXISTS 'health'@'localhost' IDENTIFIED BY '$(sql_escape "$HEALTH_PASSWORD")';
        CREATE USER IF NOT EXISTS 'sst'@'localhost' IDENTIFIED BY '$(sql_escape "$SST_PASSWORD")';
        GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.* TO 'sst'@'localhost';
    " || die "creating database and users failed"
    rm -f "$INIT_MARKER"
    supervise
}

# ------------------------------------------------------------------- start

mkdir -p /run/mysqld "$STATE_DIR"
chown mysql:mysql /run/mysqld "$STATE_DIR" "$DATADIR"
rm -f "$REACHED"
RECOVERED_POSITION=""
read_grastate
start_health
start_exporter

LAST_LOG=0
say() { # log at most every 10 s while waiting
    if [ $((SECONDS - LAST_LOG)) -ge 10 ]; then LAST_LOG=$SECONDS; log "$*"; fi
}

if [ ! -d "$DATADIR/mysql" ] || [ -z "$MY_UUID" ] || [ "$MY_UUID" = "$ZERO_UUID" ]; then
    # ---------------------------------------------- nothing to contribute
    MY_UUID="" MY_SEQNO=-1 MY_SAFE=0
    publish empty
    while :; do
        if any_peer_healthy && my_turn_to_join; then
            log "peer $HEALTHY_PEER is Synced+Primary: joining (state transfer)"
            join_cluster
        fi
        if [ "$NODE" = "$BOOTSTRAP_NODE" ] && { [ ! -d "$DATADIR/mysql" ] || [ -f "$INIT_MARKER" ]; }; then
            if [ "$FORCE" = 1 ]; then bootstrap_new; fi
            all_empty=1 seen=""
            for p in "${PEERS[@]}"; do
                s=$(peer_state "$p")
                ph=$(field phase "$s")
                seen="$seen $p=${ph:-unreachable}"
                [ "$ph" = empty ] || all_empty=0
            done
            if [ "$all_empty" = 1 ]; then bootstrap_new; fi
            say "datadir empty; not bootstrapping while peers are not all empty:$seen"
        else
            say "datadir empty; waiting for a Synced+Primary peer to join"
        fi
        sleep 1
    done
fi

# ---------------------------------------------------- datadir holds a cluster
if [ "$MY_SEQNO" = -1 ]; then
    recover_position || die "cannot determine this node's position; manual recovery needed"
fi
publish waiting
log "state: uuid=$MY_UUID seqno=$MY_SEQNO safe_to_bootstrap=$MY_SAFE gvwstate=$MY_GVW"
STARTED=$SECONDS

while :; do
    if any_peer_healthy; then
        if my_turn_to_join; then
            log "peer $HEALTHY_PEER is Synced+Primary: joining"
            join_cluster
        fi
        sleep 1
        continue
    fi
    if [ "$FORCE" = 1 ]; then bootstrap_existing "GALERA_FORCE_BOOTSTRAP=1"; fi

    reachable=0 busy=0 all_gvw=$MY_GVW any_empty=0 uuid_mismatch=0
    best=$NODE best_seqno=$MY_SEQNO best_safe=$MY_SAFE best_idx=$(node_index "$NODE")
    ahead_of_me=0 seen=""
    for p in "${PEERS[@]}"; do
        s=$(peer_state "$p")
        ph=$(field phase "$s")
        seen="$seen $p=${ph:-unreachable}"
        [ -n "$ph" ] || continue
        reachable=$((reachable + 1))
        case "$ph" in
        empty) any_empty=1; continue ;;
        waiting | pc-recovery) ;;
        *) busy=1; continue ;; # joining / bootstrapping / running: a primary exists or is forming
        esac
        puuid=$(field uuid "$s") pseq=$(field seqno "$s") psafe=$(field safe_to_bootstrap "$s")
        [ "$(field gvwstate "$s")" = 1 ] || all_gvw=0
        [ "$puuid" = "$MY_UUID" ] || uuid_mismatch=1
        pidx=$(node_index "$p")
        [ "${pseq:--1}" -gt "$MY_SEQNO" ] && ahead_of_me=1
        # better = higher seqno, then safe_to_bootstrap=1, then earlier in list
        if [ "${pseq:--1}" -gt "$best_seqno" ] ||
            { [ "${pseq:--1}" -eq "$best_seqno" ] && [ "${psafe:-0}" -gt "$best_safe" ]; } ||
            { [ "${pseq:--1}" -eq "$best_seqno" ] && [ "${psafe:-0}" -eq "$best_safe" ] && [ "$pidx" -lt "$best_idx" ]; }; then
            best=$p best_seqno=${pseq:--1} best_safe=${psafe:-0} best_idx=$pidx
        fi
    done

    if [ "$busy" = 0 ] && [ "$uuid_mismatch" = 1 ]; then
        say "peers hold a different cluster UUID than ours ($MY_UUID):$seen — refusing to bootstrap; set GALERA_FORCE_BOOTSTRAP=1 on the node to keep"
    elif [ "$busy" = 0 ] && [ "$reachable" = "${#PEERS[@]}" ]; then
        if [ "$MY_GVW" = 1 ] && [ "$all_gvw" = 1 ] && [ "$any_empty" = 0 ]; then
            log "every node was killed with the cluster up (all hold gvwstate.dat): letting pc.recovery re-form it"
            args=()
            [ -n "$RECOVERED_POSITION" ] && args+=(--wsrep-start-position="$RECOVERED_POSITION")
            start_mysqld pc-recovery "${args[@]}"
            supervise
        fi
        if [ "$best" = "$NODE" ]; then
            bootstrap_existing "most advanced of all nodes:$seen"
        fi
        say "whole cluster down; $best (seqno $best_seqno) is the most advanced and bootstraps; waiting for it:$seen"
    elif [ "$busy" = 0 ] && [ $((SECONDS - STARTED)) -ge "$GRACE" ] && [ "$MY_SAFE" = 1 ] && [ "$ahead_of_me" = 0 ]; then
        bootstrap_existing "safe_to_bootstrap=1 and no peer ahead after ${GRACE}s with some unreachable:$seen"
    else
        say "waiting (seqno $MY_SEQNO, safe_to_bootstrap $MY_SAFE, ${SECONDS}s):$seen"
    fi
    sleep 1
done
