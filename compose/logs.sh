#!/bin/bash
# One request's log lines from every service of a compose stack, in time
# order: nginx's access line, the lines of the shop replica(s) that served it
# (a request nginx retried on another replica shows both), from the central
# logs (the `logs` collector's volume; docs/observability.md).
#
#   compose/logs.sh [-p PROJECT] [--json] REQUEST-ID
#
# REQUEST-ID: the X-Request-Id of the answer (nginx's $request_id, or the one
# the client sent): letters, digits and . _ : - only, at most 128. It must
# appear in a line as a whole token (nginx's "request_id", the shop's span).
# PROJECT: -p, else DISTSHOP_PROJECT, else COMPOSE_PROJECT_NAME (environment,
# then compose/.env), else distshop.
# Output: "<time> <container> <line>" per line (UTC, microseconds; the time
# Docker read the line), or with --json the stored JSON objects
# {"ts":…,"service":…,"line":…}. Exit status 1 when no line matched, 2 on a
# usage error or when the stack's logs cannot be read.
#
# Reads the volume through the running collector (docker exec), or, when it
# is stopped, through a throwaway container of its image: lines are kept
# across restarts of every service, the collector's too.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 [-p PROJECT] [--json] REQUEST-ID" >&2; exit 2; }

project="${DISTSHOP_PROJECT:-${COMPOSE_PROJECT_NAME:-}}"
json=0 id=""
while [ $# -gt 0 ]; do
    case "$1" in
    -p | --project) [ $# -ge 2 ] || usage; project=$2; shift 2 ;;
    --json) json=1; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) [ -z "$id" ] || usage; id=$1; shift ;;
    esac
done
[ -n "$id" ] || usage
if ! [[ "$id" =~ ^[A-Za-z0-9._:-]{1,128}$ ]]; then
    echo "logs: a request id is letters, digits and . _ : - (at most 128): '$id'" >&2
    exit 2
fi
if [ -z "$project" ] && [ -r "$HERE/.env" ]; then
    project=$(sed -n 's/^[[:space:]]*COMPOSE_PROJECT_NAME=//p' "$HERE/.env" | tail -n 1)
fi
project=${project:-distshop}

# the id as a whole token: not preceded or followed by a character an id may
# hold (so id 12 does not find 123); '.' is the only one special in a regex
pattern="(^|[^A-Za-z0-9._:-])${id//./\\.}([^A-Za-z0-9._:-]|\$)"
# run in the collector's image (it has grep, sort and jq): the matching
# lines of every file, sorted by their text, which starts with the fixed-width
# UTC time ({"ts":"2026-12-04T22:10:01.123456+00:00",…), so by time
# shellcheck disable=SC2016 # expanded by the sh in the container
script='pattern=$1 json=$2
cd /var/log/distshop && set -- distshop-*.log && [ -e "$1" ] || exit 0
grep -hE -- "$pattern" "$@" | sort | if [ "$json" = 1 ]; then cat; else
    jq -r "\"\\(.ts) \\(.service) \\(.line)\""; fi'

cid=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=logs" | head -n 1)
if [ -n "$cid" ]; then
    run=(docker exec "$cid")
else
    volume="${project}_logs"
    if ! docker volume inspect "$volume" >/dev/null 2>&1; then
        echo "logs: project '$project' has no running collector and no volume $volume (-p PROJECT?)" >&2
        exit 2
    fi
    if ! docker image inspect distshop/logs:latest >/dev/null 2>&1; then
        echo "logs: the collector of '$project' is not running and image distshop/logs is missing" >&2
        exit 2
    fi
    run=(docker run --rm --network none -v "$volume:/var/log/distshop:ro" --entrypoint "" distshop/logs:latest)
fi
out=$("${run[@]}" sh -c "$script" sh "$pattern" "$json") || {
    echo "logs: reading the logs of project $project failed" >&2
    exit 2
}
if [ -z "$out" ]; then
    echo "logs: no line with request id $id in project $project" >&2
    exit 1
fi
printf '%s\n' "$out"
