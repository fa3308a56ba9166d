#!/bin/bash
# Measures the two Galera write policies on this machine, to back the choice
# made in compose/haproxy/haproxy.cfg (single writer + backups):
#   single: 3 concurrent clients all write on galera-1
#   multi:  3 concurrent clients, one per node (what an all-nodes balancer does)
# Workloads (each client runs N explicit transactions, like the shop's checkout):
#   hot:  every transaction decrements the SAME row (a best-seller's stock)
#   cold: every transaction inserts its own row (no conflicts)
# Prints elapsed time and failed transactions (deadlock / certification
# conflict, error 1213) per policy. Needs distshop/galera:latest.
# Usage: tests/cluster/write-policy.sh [N]   (default N=300)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N="${1:-300}"
[ "$N" -le 5000 ] || { echo "N at most 5000" >&2; exit 2; }
P="distshop-wp-$$"
# shellcheck source=tests/lib/compose.sh
. "$ROOT/tests/lib/compose.sh"
compose_select || exit 2
compose_env_ready "$ROOT" || exit 2 # the Galera passwords come from compose/.env
DC=("${COMPOSE[@]}" -p "$P" -f "$ROOT/compose/docker-compose.yml")
trap '"${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true' EXIT

cid() { "${DC[@]}" ps -q "$1"; }
sql() { docker exec -i "$(cid "$1")" mariadb -N -B distshop "${@:2}"; }

"${DC[@]}" up -d galera-1 galera-2 galera-3 >/dev/null 2>&1
deadline=$((SECONDS + 300))
until [ "$(for n in 1 2 3; do docker exec "$(cid galera-$n)" curl -fsS http://127.0.0.1:9200/ 2>/dev/null | grep -c 'cluster_size=3'; done | paste -sd+ | bc)" = 3 ]; do
    [ $SECONDS -lt $deadline ] || { echo "cluster not synced" >&2; exit 1; }
    sleep 2
done

sql galera-1 -e "CREATE TABLE hot (id INT PRIMARY KEY, stock INT NOT NULL) ENGINE=InnoDB;
                 INSERT INTO hot VALUES (1, 1000000);
                 CREATE TABLE cold (id INT AUTO_INCREMENT PRIMARY KEY, client INT, v VARCHAR(40)) ENGINE=InnoDB;"
sleep 1

gen() { # gen WORKLOAD CLIENT -> SQL text
    local i
    for ((i = 0; i < N; i++)); do
        if [ "$1" = hot ]; then
            echo "START TRANSACTION; UPDATE hot SET stock = stock - 1 WHERE id = 1 AND stock > 0; COMMIT;"
        else
            echo "START TRANSACTION; INSERT INTO cold (client, v) VALUES ($2, 'row-$i'); COMMIT;"
        fi
    done
}

run() { # run POLICY WORKLOAD -> "elapsed_s failed_txn"
    local policy=$1 wl=$2 k node t0 t1 errs=0 dir
    dir=$(mktemp -d)
    t0=$(date +%s.%N)
    for k in 1 2 3; do
        if [ "$policy" = single ]; then node=galera-1; else node=galera-$k; fi
        gen "$wl" "$k" | docker exec -i "$(cid "$node")" mariadb --force -N -B distshop \
            >/dev/null 2>"$dir/err.$k" &
    done
    wait
    t1=$(date +%s.%N)
    errs=$(cat "$dir"/err.* | grep -c 'ERROR' || true)
    rm -rf "$dir"
    echo "$(echo "$t1 - $t0" | bc | xargs printf '%.2f') $errs"
}

echo "write policy measurement: 3 clients x $N transactions each"
printf '%-8s %-6s %10s %8s %12s\n' policy load seconds failed "txn/s ok"
for wl in hot cold; do
    for policy in single multi; do
        read -r secs failed <<< "$(run "$policy" "$wl")"
        okn=$((3 * N - failed))
        printf '%-8s %-6s %10s %8s %12s\n' "$policy" "$wl" "$secs" "$failed" "$(echo "$okn / $secs" | bc)"
    done
done
stock=$(sql galera-2 -e "SET SESSION wsrep_sync_wait=1; SELECT 1000000 - stock FROM hot")
echo "hot row decremented $stock times in total (of $((6 * N)) attempted)"
