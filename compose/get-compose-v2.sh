#!/bin/bash
# Installs Docker Compose v2 (the `docker compose` CLI plugin) from Debian's own
# package, for machines that have only docker-compose 1.29 (Debian bookworm)
# and no access to Docker's download site. Idempotent: does nothing when
# `docker compose version` already answers.
#
#   compose/get-compose-v2.sh
#
# Why: the stack must work with both Compose versions, and CI proves it by
# running one suite with each. Bookworm has no v2 package; Debian 13 (trixie)
# has `docker-compose` 2.x, a Go program that needs only libc6 >= 2.34
# (bookworm has 2.36). We take only the plugin binary out of that package
# (dpkg-deb -x), so no trixie package is installed and apt is not touched.
#
# Trust: trixie's InRelease is checked with gpgv against the Debian archive
# keyring already on the machine (debian-archive-keyring), the Packages index
# against the SHA256 in InRelease, the .deb against the SHA256 in Packages.
#
# Environment:
#   DISTSHOP_DEBIAN_MIRROR   default http://deb.debian.org/debian
#   DISTSHOP_DEBIAN_SUITE    default trixie
#   DISTSHOP_COMPOSE_PLUGIN_DIR
#                            default /usr/local/lib/docker/cli-plugins as root,
#                            else ~/.docker/cli-plugins (both searched by docker)
set -Eeuo pipefail

MIRROR="${DISTSHOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="${DISTSHOP_DEBIAN_SUITE:-trixie}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [ -n "${DISTSHOP_COMPOSE_PLUGIN_DIR:-}" ]; then
    DEST=$DISTSHOP_COMPOSE_PLUGIN_DIR
elif [ "$(id -u)" = 0 ]; then
    DEST=/usr/local/lib/docker/cli-plugins
else
    DEST="$HOME/.docker/cli-plugins"
fi

log() { echo "[get-compose-v2] $*" >&2; }
die() { log "$*"; exit 1; }

if docker compose version >/dev/null 2>&1; then
    log "already installed: $(docker compose version | head -n1)"
    exit 0
fi
for t in curl gpgv dpkg-deb xz sha256sum; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required (apt-get install curl gpgv dpkg xz-utils coreutils)"
done
[ -r "$KEYRING" ] || die "$KEYRING missing (apt-get install debian-archive-keyring)"
ARCH=$(dpkg --print-architecture)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fetch() { curl -fsSL --retry 3 --connect-timeout 20 --max-time 600 -o "$2" "$1"; }

log "checking $MIRROR/dists/$SUITE/InRelease"
fetch "$MIRROR/dists/$SUITE/InRelease" "$TMP/InRelease"
gpgv --keyring "$KEYRING" --output "$TMP/Release" "$TMP/InRelease" 2>"$TMP/gpgv.log" ||
    { cat "$TMP/gpgv.log" >&2; die "InRelease signature not valid"; }

idx="main/binary-$ARCH/Packages.xz"
want=$(awk -v f="$idx" '/^SHA256:/ {s = 1; next} /^[^ ]/ {s = 0} s && $3 == f {print $1}' "$TMP/Release")
[ -n "$want" ] || die "$idx not listed in $SUITE's Release"
fetch "$MIRROR/dists/$SUITE/$idx" "$TMP/Packages.xz"
echo "$want  $TMP/Packages.xz" | sha256sum -c --quiet - || die "$idx checksum mismatch"

read -r version filename sha < <(xz -dc "$TMP/Packages.xz" | awk '
    /^Package: / {p = ($2 == "docker-compose")}
    p && /^Version: / {v = $2}
    p && /^Filename: / {f = $2}
    p && /^SHA256: / {s = $2}
    /^$/ && p && f {print v, f, s; exit}') || true
[ -n "${filename:-}" ] || die "no docker-compose package in $SUITE/$ARCH"
case "$version" in 2.*) ;; *) die "$SUITE has docker-compose $version, not v2" ;; esac

log "downloading docker-compose $version ($filename)"
fetch "$MIRROR/$filename" "$TMP/compose.deb"
echo "$sha  $TMP/compose.deb" | sha256sum -c --quiet - || die "package checksum mismatch"
dpkg-deb -x "$TMP/compose.deb" "$TMP/x"
bin="$TMP/x/usr/libexec/docker/cli-plugins/docker-compose"
[ -x "$bin" ] || die "the package holds no cli-plugins/docker-compose"

mkdir -p "$DEST"
install -m 0755 "$bin" "$DEST/docker-compose"
docker compose version >/dev/null 2>&1 || die "installed $DEST/docker-compose, but 'docker compose' does not answer"
log "installed $DEST/docker-compose: $(docker compose version | head -n1)"
