#!/bin/sh
# distshop nginx entrypoint: the TLS certificate and the runtime settings,
# then nginx (the image's CMD). docs/security.md, "TLS at the edge".
#
# Certificate: /etc/nginx/tls/tls.crt + tls.key (a volume).
#   * both present: used as they are (yours, or made here before);
#   * neither: a self-signed certificate is made here (EC P-256, 825 days,
#     SAN DNS:localhost, IP:127.0.0.1 plus DISTSHOP_TLS_SAN), once per volume;
#     made again only when the one made here expires within 7 days or
#     DISTSHOP_TLS_SAN changed. ".made-by-distshop" records the SAN and the
#     fingerprint of what was made here: a certificate put in its place (yours)
#     has another fingerprint and is never touched;
#   * only one of them, or a key that does not belong to the certificate:
#     refuse to start, saying so.
# Environment:
#   DISTSHOP_HTTP_REDIRECT  on: plain HTTP answers 301 to https://<host>:PORT
#                           (off, the default: plain HTTP serves the shop too)
#   DISTSHOP_HTTPS_PORT     the published HTTPS port for that redirect (8443)
#   DISTSHOP_TLS_SAN        more names for the generated certificate, e.g.
#                           DNS:shop.example.org,IP:192.0.2.10
#   DISTSHOP_HSTS           the Strict-Transport-Security value on HTTPS
#                           (max-age=31536000; `off`: none)
set -eu

TLS_DIR=/etc/nginx/tls
RUNTIME=/etc/nginx/distshop-runtime
CRT="$TLS_DIR/tls.crt"
KEY="$TLS_DIR/tls.key"
MARK="$TLS_DIR/.made-by-distshop"

log() { echo "distshop-nginx: $*" >&2; }
die() { log "$*"; exit 1; }

REDIRECT=${DISTSHOP_HTTP_REDIRECT:-off}
HTTPS_PORT=${DISTSHOP_HTTPS_PORT:-8443}
EXTRA_SAN=${DISTSHOP_TLS_SAN:-}
HSTS=${DISTSHOP_HSTS-max-age=31536000}

# values that end up in nginx's configuration: a strict alphabet, no quotes
case "$REDIRECT" in on | off) ;; *) die "DISTSHOP_HTTP_REDIRECT must be on or off, not '$REDIRECT'" ;; esac
case "$HTTPS_PORT" in '' | *[!0-9]*) die "DISTSHOP_HTTPS_PORT must be a port number, not '$HTTPS_PORT'" ;; esac
case "$EXTRA_SAN" in *[!A-Za-z0-9.:,*-]*) die "DISTSHOP_TLS_SAN: only entries like DNS:name or IP:address, comma-separated" ;; esac
case "$HSTS" in *[!A-Za-z0-9=\;\ _-]*) die "DISTSHOP_HSTS: only a header value like max-age=31536000; includeSubDomains" ;; esac
[ "$HSTS" = off ] && HSTS=""

SAN="DNS:localhost,IP:127.0.0.1${EXTRA_SAN:+,$EXTRA_SAN}"

fingerprint() { openssl x509 -in "$CRT" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'; }

make_cert() {
    umask 077
    mkdir -p "$TLS_DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
        -subj "/CN=localhost/O=distshop (self-signed, this install)" \
        -addext "subjectAltName=$SAN" -addext "extendedKeyUsage=serverAuth" \
        -keyout "$TLS_DIR/.tls.key.new" -out "$TLS_DIR/.tls.crt.new" 2>/dev/null ||
        die "openssl could not make a certificate in $TLS_DIR"
    chmod 600 "$TLS_DIR/.tls.key.new"
    chmod 644 "$TLS_DIR/.tls.crt.new"
    mv -f "$TLS_DIR/.tls.key.new" "$KEY"
    mv -f "$TLS_DIR/.tls.crt.new" "$CRT"
    printf '%s\n%s\n' "$SAN" "$(fingerprint)" > "$MARK"
    log "made a self-signed certificate for $SAN in $TLS_DIR (this install's own, made here; kept in the volume)"
}

if [ -s "$CRT" ] && [ -s "$KEY" ]; then
    if [ -f "$MARK" ] && [ "$(sed -n 2p "$MARK")" != "$(fingerprint)" ]; then
        rm -f "$MARK" # replaced by someone: theirs from now on
    fi
    if [ -f "$MARK" ]; then
        if ! openssl x509 -in "$CRT" -noout -checkend $((7 * 86400)) >/dev/null 2>&1; then
            log "the self-signed certificate made here expires within 7 days: making a new one"
            make_cert
        elif [ "$(sed -n 1p "$MARK")" != "$SAN" ]; then
            log "DISTSHOP_TLS_SAN changed ($(sed -n 1p "$MARK") -> $SAN): making a new self-signed certificate"
            make_cert
        fi
    else
        log "using the certificate in $TLS_DIR (not made here: never replaced)"
        openssl x509 -in "$CRT" -noout -checkend 0 >/dev/null 2>&1 ||
            log "WARNING: that certificate has EXPIRED"
    fi
elif [ -e "$CRT" ] || [ -e "$KEY" ]; then
    die "$TLS_DIR holds only one of tls.crt and tls.key (or an empty one): provide both, or neither to get a self-signed certificate"
else
    make_cert
fi

# the key must belong to the certificate (a mismatch would only show at the first handshake)
crt_pub=$(openssl x509 -in "$CRT" -noout -pubkey 2>/dev/null) || die "$CRT is not a PEM certificate"
key_pub=$(openssl pkey -in "$KEY" -pubout 2>/dev/null) || die "$KEY is not a PEM private key (or it is encrypted)"
[ "$crt_pub" = "$key_pub" ] || die "$KEY does not belong to $CRT"
log "TLS: $(openssl x509 -in "$CRT" -noout -subject -enddate 2>/dev/null | tr '\n' ' ')sha256 $(fingerprint)"

# ---------------------------------------------------------- runtime settings
mkdir -p "$RUNTIME"
cat > "$RUNTIME/http.conf.new" <<EOF
# written by distshop-nginx-entrypoint: Strict-Transport-Security on HTTPS only
map \$scheme \$hsts {
    https   "$HSTS";
    default "";
}
EOF
if [ "$REDIRECT" = on ]; then
    if [ "$HTTPS_PORT" = 443 ]; then target="https://\$host\$request_uri"; else target="https://\$host:$HTTPS_PORT\$request_uri"; fi
    cat > "$RUNTIME/plain.conf.new" <<EOF
# written by distshop-nginx-entrypoint: DISTSHOP_HTTP_REDIRECT=on
location = /nginx-health {
    access_log off;
    default_type text/plain;
    return 200 "ok\n";
}
location = /nginx-status {
    stub_status;
    access_log off;
    allow 127.0.0.1;
    deny all;
}
location / {
    return 301 $target;
}
EOF
    log "plain HTTP redirects to HTTPS (port $HTTPS_PORT)"
else
    cat > "$RUNTIME/plain.conf.new" <<'EOF'
# written by distshop-nginx-entrypoint: DISTSHOP_HTTP_REDIRECT=off, plain HTTP serves the shop too
include /etc/nginx/distshop-locations.conf;
EOF
    log "plain HTTP serves the shop too (DISTSHOP_HTTP_REDIRECT=off)"
fi
mv -f "$RUNTIME/http.conf.new" "$RUNTIME/http.conf"
mv -f "$RUNTIME/plain.conf.new" "$RUNTIME/plain.conf"

nginx -t -q || die "nginx refuses its configuration (above)"
exec "$@"
