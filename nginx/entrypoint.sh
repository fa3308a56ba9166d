#!/bin/sh
# nginx with its upstream follower (see upstreams.sh): write the replica list,
# start the follower in the background, then nginx in the foreground as PID 1
# (so `docker stop` reaches it directly: SIGQUIT = graceful).
set -eu
distshop-upstreams once
distshop-upstreams watch &
exec nginx -g 'daemon off;'
