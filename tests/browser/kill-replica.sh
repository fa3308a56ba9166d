#!/usr/bin/env bash
# tests/browser/kill-replica.sh NAME — `docker kill` the shop container whose replica name is
# NAME, as the page footer shows it ("served by <code>NAME</code>"). The browser journey runs
# this in the middle of a shopper's visit (tests/browser/run.sh --stack).
#
# NAME is either the container's hostname (a container id, as the shop named itself before it
# had replica names) or `<service>-<n>` (`shop-2`: a compose container named `*_shop_2` under
# Compose v1 or `*-shop-2` under v2 and the manager's clones). Exactly one running container
# must match. DISTSHOP_BROWSER_PROJECT, when set, limits the search to that compose project;
# BROWSER_KILLED_FILE, when set, gets the killed container's id appended (run.sh starts it
# again at the end).
set -euo pipefail

name=${1:?usage: kill-replica.sh NAME}
filter=()
if [[ -n "${DISTSHOP_BROWSER_PROJECT:-}" ]]; then
    filter=(--filter "label=com.docker.compose.project=$DISTSHOP_BROWSER_PROJECT")
fi

matches=()
while read -r id cname host; do
    cname=${cname#/}
    hit=0
    if [[ "$host" == "$name" ]] || { ((${#name} >= 12)) && [[ "$id" == "$name"* ]]; }; then
        hit=1
    elif [[ "$name" =~ ^([A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)*)-([0-9]+)$ ]]; then
        svc=${BASH_REMATCH[1]} n=${BASH_REMATCH[3]}
        if [[ "$cname" == *"_${svc}_$n" || "$cname" == *"-${svc}-$n" || "$cname" == "${svc}-$n" ]]; then
            hit=1
        fi
    fi
    if ((hit)); then matches+=("$id $cname"); fi
done < <(docker ps -q --no-trunc "${filter[@]}" | xargs -r docker inspect -f '{{.Id}} {{.Name}} {{.Config.Hostname}}')

if ((${#matches[@]} != 1)); then
    echo "kill-replica: ${#matches[@]} running containers match the replica name '$name'${DISTSHOP_BROWSER_PROJECT:+ in project $DISTSHOP_BROWSER_PROJECT}, not 1:" >&2
    if ((${#matches[@]} > 1)); then
        printf '  %s\n' "${matches[@]}" >&2
        [[ -n "${DISTSHOP_BROWSER_PROJECT:-}" ]] || echo "  (several stacks? set DISTSHOP_BROWSER_PROJECT / run.sh --project)" >&2
    fi
    exit 1
fi
read -r id cname <<<"${matches[0]}"
docker kill -s KILL "$id" >/dev/null
if [[ -n "${BROWSER_KILLED_FILE:-}" ]]; then echo "$id" >>"$BROWSER_KILLED_FILE"; fi
echo "killed $cname (${id:0:12}), the replica '$name'"
