#!/bin/bash
# Build every distshop image on a machine WITHOUT a container registry.
#
#   1. debian:bookworm-slim: made with debootstrap from the Debian mirror and
#      `docker import`ed (skipped when the image exists already);
#   2. the Rust binaries are built on the host (`cargo build --release -p shop
#      -p galera-health -p manager`; bookworm glibc, like the images);
#   3. the images are built from the *.prebuilt Dockerfiles (and the plain ones
#      that need no Rust), each from a small tar context holding only the files
#      it copies, so target/ is never sent to the daemon.
#
#   4. (first of all) compose/.env, this install's configuration with its own random secrets,
#      is made by compose/init_env.sh unless it exists (never overwritten).
#
# Idempotent; re-run after changing code. Then: cd compose && docker-compose up -d
#
# Environment:
#   CARGO_TARGET_DIR          where cargo puts binaries (default: <repo>/target)
#   DISTSHOP_SKIP_CARGO=1     use the binaries already built
#   DISTSHOP_SHOP_BIN, DISTSHOP_GALERA_HEALTH_BIN, DISTSHOP_MANAGER_BIN
#                             take that binary instead of $CARGO_TARGET_DIR's
#                             (implies not building it)
#   DISTSHOP_BUILD_NETWORK    `docker build --network` (e.g. host) if the build
#                             containers cannot reach the Debian mirror
#   DEBIAN_MIRROR             default http://deb.debian.org/debian
#   DISTSHOP_LOCAL_RUST_IMAGE=1
#                             also make a local `rust:1-bookworm` image from the
#                             host's Rust toolchain (`rustc --print sysroot`,
#                             without its docs; ~1 GB) so the multi-stage
#                             Dockerfiles, and so `docker compose up --build`,
#                             work without a registry too (they download
#                             crates from crates.io and compile in Docker: slow)
#   DISTSHOP_RUST_IMAGE_CA=/path/bundle.pem
#                             CA bundle for that image's cargo (e.g. the host's
#                             /etc/ssl/certs/ca-certificates.crt behind a
#                             TLS-inspecting proxy)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SHOP_BIN="${DISTSHOP_SHOP_BIN:-$TARGET_DIR/release/shop}"
HEALTH_BIN="${DISTSHOP_GALERA_HEALTH_BIN:-$TARGET_DIR/release/galera-health}"
MANAGER_BIN="${DISTSHOP_MANAGER_BIN:-$TARGET_DIR/release/distshop-manager}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BUILD_ARGS=(--quiet)
[ -n "${DISTSHOP_BUILD_NETWORK:-}" ] && BUILD_ARGS+=(--network "$DISTSHOP_BUILD_NETWORK")
export DOCKER_BUILDKIT=0 # plain daemon builder: works without buildx

log() { echo "offline-prepare: $*" >&2; }
timer() { local t0=$SECONDS; "$@"; log "  done in $((SECONDS - t0))s"; }

# --------------------------------------------------------------- base image
# The recipe's version, as a label on the image we make: an image made by an
# older recipe is replaced, one we did not make (a real debian:bookworm-slim,
# pulled from a registry) is never touched.
BASE_RECIPE=2

base_image() {
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        local made cmd
        IFS='|' read -r made cmd < <(docker image inspect \
            -f '{{index .Config.Labels "org.distshop.base-recipe"}}|{{json .Config.Cmd}}' debian:bookworm-slim)
        if [ "$made" = "$BASE_RECIPE" ]; then
            log "debian:bookworm-slim exists (made here, recipe $BASE_RECIPE); not rebuilding it"
            return
        elif [ -z "$made" ] && [ "$cmd" != null ] && [ -n "$cmd" ]; then
            log "debian:bookworm-slim exists (not made here); using it"
            return
        fi
        log "debian:bookworm-slim was made by an older recipe (${made:-1}); making it again"
    fi
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
    fi
    local dir
    dir=$(mktemp -d /tmp/distshop-bookworm.XXXXXX)
    log "debootstrap bookworm (minbase) into $dir"
    debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >/tmp/distshop-debootstrap.log 2>&1 ||
        { tail -20 /tmp/distshop-debootstrap.log >&2; exit 1; }
    slim_rootfs "$dir"
    tar -C "$dir" -c . | docker import \
        --change "LABEL org.distshop.base-recipe=$BASE_RECIPE" \
        --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
    rm -rf "$dir"
}

# slim_rootfs DIR: what makes the official image "-slim", so that the images
# built on it stay small too. Without it every `apt-get install` layer kept
# apt's two 39 MB package caches and the downloaded .debs (the shop image was
# 238 MB, 100 MB of it apt leftovers), and docs, man pages and translations.
slim_rootfs() {
    local d=$1
    mkdir -p "$d/etc/dpkg/dpkg.cfg.d" "$d/etc/apt/apt.conf.d"
    cat > "$d/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# distshop base image: no docs, man pages or translations (like the official -slim image)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
    local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
    cat > "$d/etc/apt/apt.conf.d/docker-clean" <<CFG
// distshop base image: keep no package caches in image layers
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    echo 'Acquire::Languages "none";' > "$d/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$d/etc/apt/apt.conf.d/docker-autoremove-suggests"
    find "$d/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$d/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$d"/usr/share/groff/* "$d"/usr/share/info/* "$d"/usr/share/linda/* "$d"/usr/share/lintian/* \
        "$d"/usr/share/locale/* "$d"/usr/share/man/*
    rm -rf "$d"/var/cache/apt/archives/*.deb "$d"/var/cache/apt/*.bin "$d"/var/lib/apt/lists/*
}

# ---------------------------------------------- optional local rust image
local_rust_image() {
    if docker image inspect rust:1-bookworm >/dev/null 2>&1; then
        log "rust:1-bookworm exists; not rebuilding it"
        return
    fi
    local sysroot dir
    sysroot=$(rustc --print sysroot)
    dir=$(mktemp -d /tmp/distshop-rustimg.XXXXXX)
    cat > "$dir/Dockerfile" <<'DOCKERFILE'
# Local stand-in for the official rust:1-bookworm image: the host's toolchain
# on Debian bookworm with a C toolchain for linking and build scripts.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make pkg-config ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
COPY ca-bundle.pem /usr/local/share/distshop-ca-bundle.pem
ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH CARGO_HOME=/usr/local/cargo
RUN if [ -s /usr/local/share/distshop-ca-bundle.pem ]; then \
      cp /usr/local/share/distshop-ca-bundle.pem /etc/ssl/certs/ca-certificates.crt; fi \
 && rustc --version && cargo --version
DOCKERFILE
    if [ -n "${DISTSHOP_RUST_IMAGE_CA:-}" ]; then
        cp "$DISTSHOP_RUST_IMAGE_CA" "$dir/ca-bundle.pem"
    else
        : > "$dir/ca-bundle.pem"
    fi
    log "rust:1-bookworm from the host toolchain at $sysroot ($(rustc --version))"
    build_image rust:1-bookworm Dockerfile -- -C "$dir" Dockerfile ca-bundle.pem \
        -C "$sysroot" --exclude=./share/doc --transform='s,^\.,toolchain,' .
    rm -rf "$dir"
}

# ------------------------------------------------------------------ binaries
binaries() {
    local pkgs=()
    [ -n "${DISTSHOP_SHOP_BIN:-}" ] || pkgs+=(-p shop)
    [ -n "${DISTSHOP_GALERA_HEALTH_BIN:-}" ] || pkgs+=(-p galera-health)
    [ -n "${DISTSHOP_MANAGER_BIN:-}" ] || pkgs+=(-p manager)
    if [ "${DISTSHOP_SKIP_CARGO:-0}" = 1 ] || [ ${#pkgs[@]} -eq 0 ]; then
        log "not running cargo; using $SHOP_BIN, $HEALTH_BIN and $MANAGER_BIN"
    else
        log "cargo build --release ${pkgs[*]} (target dir $TARGET_DIR)"
        (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --quiet "${pkgs[@]}")
    fi
    local b
    for b in "$SHOP_BIN" "$HEALTH_BIN" "$MANAGER_BIN"; do
        [ -x "$b" ] || { log "missing binary $b"; exit 1; }
    done
}

# build_image TAG DOCKERFILE -- tar arguments producing the context
build_image() {
    local tag=$1 dockerfile=$2
    shift 3
    log "image $tag ($dockerfile)"
    local out
    if ! out=$(tar -c "$@" | docker build "${BUILD_ARGS[@]}" -t "$tag" -f "$dockerfile" - 2>&1); then
        echo "$out" >&2
        log "building $tag failed"
        exit 1
    fi
}

# bin_ctx PATH NAME: tar arguments placing binary PATH at target/release/NAME
bin_ctx() {
    local dir base
    dir=$(cd "$(dirname "$1")" && pwd)
    base=$(basename "$1")
    echo "-C" "$dir" "--transform=s,^$base\$,target/release/$2," "$base"
}

main() {
    local t0=$SECONDS
    command -v docker >/dev/null || { log "docker is required"; exit 1; }
    # this install's secrets first (once; an existing compose/.env is kept)
    "$ROOT/compose/init_env.sh"
    timer base_image
    if [ "${DISTSHOP_LOCAL_RUST_IMAGE:-0}" = 1 ]; then timer local_rust_image; fi
    timer binaries
    cd "$ROOT"
    # shellcheck disable=SC2046
    timer build_image distshop/shop:latest compose/shop/Dockerfile.prebuilt -- \
        compose/shop/Dockerfile.prebuilt $(bin_ctx "$SHOP_BIN" shop)
    # shellcheck disable=SC2046
    timer build_image distshop/galera:latest galera/Dockerfile.prebuilt -- \
        galera $(bin_ctx "$HEALTH_BIN" galera-health)
    # shellcheck disable=SC2046
    timer build_image distshop/manager:latest services/manager/Dockerfile.prebuilt -- \
        services/manager/Dockerfile.prebuilt $(bin_ctx "$MANAGER_BIN" distshop-manager)
    timer build_image distshop/nginx:latest nginx/Dockerfile -- nginx shop/static
    timer build_image distshop/redis:latest Dockerfile -- -C compose/redis .
    timer build_image distshop/db:latest Dockerfile -- -C compose/haproxy .
    log "all images ready in $((SECONDS - t0))s:"
    docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' 'distshop/*' >&2
    log "next: cd compose && docker-compose up -d   (see docs/cluster.md)"
}

main "$@"
