#!/bin/bash
# Build every distshop image on a machine WITHOUT a container registry.
#
#   0. compose/.env, this install's configuration with its own random secrets,
#      is made by compose/init_env.sh unless it exists (never overwritten);
#   1. debian:bookworm-slim: made with debootstrap from the Debian mirror and
#      `docker import`ed (skipped when the image exists already);
#   2. distshop/build:bookworm (compose/build/Dockerfile): that base plus gcc,
#      libc6-dev, make, pkg-config; no Rust in it (docker's layer cache makes
#      re-runs a no-op);
#   3. the Rust binaries (`cargo build --release --locked --offline -p shop
#      -p galera-health -p manager -p simulator`, and -p distshop-controlroom
#      once services/controlroom exists) are compiled IN that container, with the
#      host's toolchain mounted read-only and the crates the host fetched
#      (`cargo fetch --locked` first), without a network, as the invoking user,
#      into target/bookworm/ (never mixed with the host's target/release/).
#      So they link against bookworm's glibc, like the images, whatever the
#      host runs (Ubuntu 24.04, Fedora, ...). cargo is incremental: a re-run
#      without code changes compiles nothing;
#   4. the images are built from the *.prebuilt Dockerfiles (and the plain ones
#      that need no Rust: nginx, redis, db, and the observability images
#      prometheus, exporters, logs; docs/observability.md), each from a small
#      tar context holding only the files it copies, so target/ is never sent
#      to the daemon.
#
# Idempotent; re-run after changing code. Then: cd compose && docker-compose up -d
# (`up -d --build` works offline too: the compose file's default build variant
# is .prebuilt, which copies the binaries from target/bookworm/release/).
#
# Environment:
#   DISTSHOP_SKIP_CARGO=1     use the binaries already in target/bookworm/release
#   DISTSHOP_EXTRA_PKGS       more workspace packages to build there (e.g. distshop-bench);
#                             the simulator (distshop-sim) is always built
#   DISTSHOP_SHOP_BIN, DISTSHOP_GALERA_HEALTH_BIN, DISTSHOP_MANAGER_BIN
#                             take that binary instead of target/bookworm's
#                             (implies not building it; it must need no glibc
#                             newer than bookworm's 2.36: checked)
#   DISTSHOP_RUST_SYSROOT     the toolchain mounted into the build container
#                             (default: `rustc --print sysroot`); it must run
#                             on Debian bookworm (rustup's toolchains do; a
#                             distro's rustc linked to its own LLVM may not)
#   DISTSHOP_BUILD_NETWORK    `docker build --network` (e.g. host) if the build
#                             containers cannot reach the Debian mirror
#   DEBIAN_MIRROR             default http://deb.debian.org/debian
#   DISTSHOP_LOCAL_RUST_IMAGE=1
#                             also make a local `rust:1-bookworm` image from the
#                             host's Rust toolchain (copied in, without its
#                             docs; ~1 GB) so the multi-stage Dockerfiles
#                             (DISTSHOP_BUILD_VARIANT=.multistage) work without
#                             a registry too (they download crates from
#                             crates.io and compile in Docker: slow)
#   DISTSHOP_RUST_IMAGE_CA=/path/bundle.pem
#                             CA bundle for that image's cargo (e.g. the host's
#                             /etc/ssl/certs/ca-certificates.crt behind a
#                             TLS-inspecting proxy)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The container build's own target dir, inside the repository so that the
# compose file's `build:` (context = repository root, .dockerignore) can copy
# the binaries from it. CARGO_TARGET_DIR (the host's builds) is not used.
TARGET_DIR="$ROOT/target/bookworm"
BUILD_IMAGE=distshop/build:bookworm
SHOP_BIN="${DISTSHOP_SHOP_BIN:-$TARGET_DIR/release/shop}"
HEALTH_BIN="${DISTSHOP_GALERA_HEALTH_BIN:-$TARGET_DIR/release/galera-health}"
MANAGER_BIN="${DISTSHOP_MANAGER_BIN:-$TARGET_DIR/release/distshop-manager}"
# the control room (issue 13): built and imaged once its package is in the
# workspace (services/controlroom; Cargo.toml takes every services/*)
CONTROLROOM=0 CONTROLROOM_PKG=""
if [ -f "$ROOT/services/controlroom/Cargo.toml" ]; then
    CONTROLROOM=1
    # its package name, from its manifest (distshop-controlroom)
    CONTROLROOM_PKG=$(sed -n '/^\[package\]/,/^\[/s/^name *= *"\(.*\)".*/\1/p' \
        "$ROOT/services/controlroom/Cargo.toml" | head -n 1)
fi
CONTROLROOM_BIN="$TARGET_DIR/release/distshop-controlroom"
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

# ------------------------------------------------------------ build image
# Always "built": after the first time docker's layer cache answers in about a
# second, and a new base image or recipe (its label) rebuilds what changed.
build_env_image() {
    build_image "$BUILD_IMAGE" Dockerfile -- -C "$ROOT/compose/build" Dockerfile
}

# --------------------------------------------------------------- toolchain
# no_toolchain REASON: stop, saying what to do instead.
no_toolchain() {
    log "no Rust toolchain to mount into the bookworm build container: $1"
    log "  The build mounts the host's toolchain (\`rustc --print sysroot\`, or"
    log "  DISTSHOP_RUST_SYSROOT) and needs one that runs on Debian bookworm,"
    log "  x86_64/aarch64 Linux: rustup's do (https://rustup.rs), a distro's"
    log "  rustc linked to its own LLVM may not. Otherwise:"
    log "  * with a registry (macOS, Windows: Docker Desktop): build in the"
    log "    official rust image with the multi-stage Dockerfiles:"
    log "      compose/init_env.sh && cd compose &&"
    log "      DISTSHOP_BUILD_VARIANT=.multistage docker compose up -d --build"
    log "  * DISTSHOP_LOCAL_RUST_IMAGE=1 makes a local rust:1-bookworm for those"
    log "    Dockerfiles, from a host toolchain that runs on bookworm;"
    log "  * or build the binaries elsewhere (on bookworm or older glibc) and pass"
    log "    DISTSHOP_SHOP_BIN, DISTSHOP_GALERA_HEALTH_BIN, DISTSHOP_MANAGER_BIN."
    exit 1
}

SYSROOT=
# find_toolchain: the sysroot to mount, checked on the host (cheap) first
find_toolchain() {
    [ "$(uname -s)" = Linux ] ||
        no_toolchain "this host is $(uname -s); its toolchain cannot run in a Linux container"
    if [ -n "${DISTSHOP_RUST_SYSROOT:-}" ]; then
        SYSROOT=$DISTSHOP_RUST_SYSROOT
    else
        command -v rustc >/dev/null || no_toolchain "rustc is not on PATH"
        SYSROOT=$(rustc --print sysroot) || no_toolchain "\`rustc --print sysroot\` failed"
    fi
    SYSROOT=$(cd "$SYSROOT" 2>/dev/null && pwd -P) || no_toolchain "sysroot ${SYSROOT:-?} is not a directory"
    case "$SYSROOT" in
    / | /usr | /usr/local)
        no_toolchain "the toolchain is installed into $SYSROOT (a distribution's or a system-wide install), which cannot be mounted on its own" ;;
    esac
    if [ ! -x "$SYSROOT/bin/rustc" ] || [ ! -x "$SYSROOT/bin/cargo" ]; then
        no_toolchain "$SYSROOT has no bin/rustc and bin/cargo"
    fi
}

# probe_toolchain: the mounted rustc and cargo run on bookworm
probe_toolchain() {
    local out
    if ! out=$(docker run --rm --network none -v "$SYSROOT:/opt/rust:ro" "$BUILD_IMAGE" \
        sh -c 'rustc -vV && cargo -V' 2>&1); then
        echo "$out" | tail -5 >&2
        no_toolchain "$SYSROOT/bin/rustc or cargo does not run on Debian bookworm (above)"
    fi
    log "toolchain $SYSROOT: $(echo "$out" | sed -n 1p), $(echo "$out" | tail -1)"
}

# ---------------------------------------------- optional local rust image
local_rust_image() {
    if docker image inspect rust:1-bookworm >/dev/null 2>&1; then
        log "rust:1-bookworm exists; not rebuilding it"
        return
    fi
    local dir
    dir=$(mktemp -d /tmp/distshop-rustimg.XXXXXX)
    cat > "$dir/Dockerfile" <<DOCKERFILE
# Local stand-in for the official rust:1-bookworm image: the host's toolchain
# on the build image (Debian bookworm and a C toolchain for linking and build
# scripts), with CA certificates: cargo downloads crates in these builds.
FROM $BUILD_IMAGE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
COPY ca-bundle.pem /usr/local/share/distshop-ca-bundle.pem
ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:\$PATH CARGO_HOME=/usr/local/cargo
RUN if [ -s /usr/local/share/distshop-ca-bundle.pem ]; then \\
      cp /usr/local/share/distshop-ca-bundle.pem /etc/ssl/certs/ca-certificates.crt; fi \\
 && rustc --version && cargo --version
DOCKERFILE
    if [ -n "${DISTSHOP_RUST_IMAGE_CA:-}" ]; then
        cp "$DISTSHOP_RUST_IMAGE_CA" "$dir/ca-bundle.pem"
    else
        : > "$dir/ca-bundle.pem"
    fi
    log "rust:1-bookworm from the host toolchain at $SYSROOT"
    build_image rust:1-bookworm Dockerfile -- -C "$dir" Dockerfile ca-bundle.pem \
        -C "$SYSROOT" --exclude=./share/doc --transform='s,^\.,toolchain,' .
    rm -rf "$dir"
}

# ------------------------------------------------------------------ binaries
# PKGS: the packages to build (those whose binary is not given)
PKGS=()
[ -n "${DISTSHOP_SHOP_BIN:-}" ] || PKGS+=(-p shop)
[ -n "${DISTSHOP_GALERA_HEALTH_BIN:-}" ] || PKGS+=(-p galera-health)
[ -n "${DISTSHOP_MANAGER_BIN:-}" ] || PKGS+=(-p manager)
# the shopper simulator too (the demo and the failover and swarm suites run it, on the host and
# in a bookworm container: built here it runs on both), and what DISTSHOP_EXTRA_PKGS names
# (bench/run.sh: distshop-bench), in the same build, so no second build compiles the same crates
PKGS+=(-p simulator)
[ "$CONTROLROOM" = 0 ] || PKGS+=(-p "${CONTROLROOM_PKG:-distshop-controlroom}")
for p in ${DISTSHOP_EXTRA_PKGS:-}; do PKGS+=(-p "$p"); done
[ "${DISTSHOP_SKIP_CARGO:-0}" != 1 ] || PKGS=()

# fetch_crates: every crate of Cargo.lock into the host's CARGO_HOME (the build
# container has no network). Offline first: nothing to download, no request.
fetch_crates() {
    command -v cargo >/dev/null || PATH="$SYSROOT/bin:$PATH"
    if (cd "$ROOT" && cargo fetch --locked --offline --quiet) 2>/dev/null; then
        log "crates: all in $CARGO_HOME_DIR already"
        return
    fi
    log "cargo fetch --locked (crates.io)"
    (cd "$ROOT" && cargo fetch --locked --quiet)
}

binaries() {
    CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
    fetch_crates
    mkdir -p "$TARGET_DIR"
    # the host's uid, so target/bookworm is not root-owned; but under rootless
    # Docker the container's root IS the invoking user
    local user mounts=() f
    user="$(id -u):$(id -g)"
    docker info -f '{{println .SecurityOptions}}' 2>/dev/null | grep -q rootless && user=0:0
    for f in registry git; do
        [ -d "$CARGO_HOME_DIR/$f" ] && mounts+=(-v "$CARGO_HOME_DIR/$f:/cargo/$f")
    done
    # cargo's package-cache locks: the host's own files, so a host cargo
    # unpacking crates at the same time excludes this one (flock)
    for f in .package-cache .package-cache-mutate; do
        [ -f "$CARGO_HOME_DIR/$f" ] && mounts+=(-v "$CARGO_HOME_DIR/$f:/cargo/$f")
    done
    log "cargo build --release --locked --offline ${PKGS[*]} in $BUILD_IMAGE -> target/bookworm/release"
    log "  (the first time: the whole release build, several minutes on 2 cores)"
    docker run --rm --network none --user "$user" \
        -v "$SYSROOT:/opt/rust:ro" -v "$ROOT:/src:ro" -v "$TARGET_DIR:/src/target/bookworm" \
        "${mounts[@]}" -e CARGO_TARGET_DIR=/src/target/bookworm "$BUILD_IMAGE" \
        cargo build --release --locked --offline --quiet "${PKGS[@]}"
}

# abs PATH: PATH made absolute (docker -v takes a relative one for a volume name)
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

# check_binaries: present, and needing no glibc newer than the images' (a
# binary given by DISTSHOP_*_BIN may come from a newer host)
check_binaries() {
    local b
    for b in "$SHOP_BIN" "$HEALTH_BIN" "$MANAGER_BIN"; do
        [ -x "$b" ] || { log "missing binary $b (DISTSHOP_SKIP_CARGO=1 needs a previous build)"; exit 1; }
    done
    if ! docker image inspect "$BUILD_IMAGE" >/dev/null 2>&1; then
        log "not checking the binaries' glibc ($BUILD_IMAGE is not made)"
        return
    fi
    local out
    out=$(docker run --rm --network none -v "$(abs "$SHOP_BIN"):/check/shop:ro" \
        -v "$(abs "$HEALTH_BIN"):/check/galera-health:ro" \
        -v "$(abs "$MANAGER_BIN"):/check/distshop-manager:ro" "$BUILD_IMAGE" sh -c '
        have=$(getconf GNU_LIBC_VERSION | cut -d" " -f2) rc=0
        for b in /check/*; do
            need=$(objdump -T "$b" | grep -o "GLIBC_[0-9.]*" | cut -d_ -f2 | sort -uV | tail -1)
            if [ "$(printf "%s\n%s\n" "$need" "$have" | sort -V | tail -1)" != "$have" ]; then
                echo "${b#/check/} needs glibc $need, the images have $have"; rc=1
            fi
        done
        exit $rc') || {
        echo "$out" >&2
        log "built on a newer glibc than Debian bookworm's: build them with this script (no DISTSHOP_*_BIN)"
        exit 1
    }
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

# bin_ctx PATH NAME: tar arguments placing binary PATH at
# target/bookworm/release/NAME, where the .prebuilt Dockerfiles copy it from
bin_ctx() {
    local dir base
    dir=$(cd "$(dirname "$1")" && pwd)
    base=$(basename "$1")
    echo "-C" "$dir" "--transform=s,^$base\$,target/bookworm/release/$2," "$base"
}

main() {
    local t0=$SECONDS
    command -v docker >/dev/null || { log "docker is required"; exit 1; }
    # this install's secrets first (once; an existing compose/.env is kept)
    "$ROOT/compose/init_env.sh"
    local need_rust=0
    [ ${#PKGS[@]} -eq 0 ] || need_rust=1
    [ "${DISTSHOP_LOCAL_RUST_IMAGE:-0}" != 1 ] || need_rust=1
    # before anything slow: is there a toolchain to mount?
    [ "$need_rust" = 0 ] || find_toolchain
    timer base_image
    timer build_env_image
    if [ "$need_rust" = 1 ]; then probe_toolchain; fi
    if [ "${DISTSHOP_LOCAL_RUST_IMAGE:-0}" = 1 ]; then timer local_rust_image; fi
    if [ ${#PKGS[@]} -gt 0 ]; then
        timer binaries
    else
        log "not running cargo; using $SHOP_BIN, $HEALTH_BIN and $MANAGER_BIN"
    fi
    check_binaries
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
    # observability (docs/observability.md): Debian's packages only
    timer build_image distshop/prometheus:latest Dockerfile -- -C compose/prometheus .
    timer build_image distshop/exporters:latest Dockerfile -- -C compose/exporters .
    timer build_image distshop/logs:latest Dockerfile -- -C compose/logs .
    if [ "$CONTROLROOM" = 1 ] && [ -f services/controlroom/Dockerfile.prebuilt ]; then
        [ -x "$CONTROLROOM_BIN" ] || { log "missing binary $CONTROLROOM_BIN (DISTSHOP_SKIP_CARGO=1 needs a previous build)"; exit 1; }
        # shellcheck disable=SC2046
        timer build_image distshop/controlroom:latest services/controlroom/Dockerfile.prebuilt -- \
            services/controlroom/Dockerfile.prebuilt $(bin_ctx "$CONTROLROOM_BIN" distshop-controlroom)
    else
        log "no services/controlroom (with its Dockerfile.prebuilt) yet: image distshop/controlroom not built"
    fi
    log "all images ready in $((SECONDS - t0))s:"
    docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' 'distshop/*' >&2
    log "next: cd compose && docker-compose up -d   (or up -d --build: offline too; docs/cluster.md)"
}

main "$@"
