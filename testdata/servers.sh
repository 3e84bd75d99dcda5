#!/usr/bin/env bash
# Install / locate the real servers the object store tests run against:
#
#   testdata/servers.sh install   s3s-fs (an S3 server over a directory, from
#                                 crates.io), Azurite (Azure's Blob storage
#                                 emulator, from npm) with Azure's own JS client
#                                 to upload test blobs, and promtool (Debian's
#                                 prometheus package) to check metrics files.
#   testdata/servers.sh env       print `export ETCD_RESCUE_SERVERS=...`
#
# Environment:
#   ETCD_RESCUE_SERVERS   where s3s-fs and the npm packages go
#                         (default: <repo>/target/servers)
#
# Only package registries are contacted (crates.io, npm, apt).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SERVERS="${ETCD_RESCUE_SERVERS:-$REPO_ROOT/target/servers}"

# s3s-fs 0.15 and later need a newer rustc than the machine's 1.95.
S3S_FS_VERSION=0.14.1
AZURITE_VERSION=3.35.0
AZURE_BLOB_VERSION=12.29.1

log() { echo "servers.sh: $*" >&2; }
die() { echo "servers.sh: ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

install_s3s() {
    if [ -x "$SERVERS/bin/s3s-fs" ]; then
        return 0
    fi
    log "installing s3s-fs $S3S_FS_VERSION (cargo install)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked \
        --root "$SERVERS" --quiet || die "cargo install s3s-fs failed"
}

install_azurite() {
    local nm="$SERVERS/node/node_modules"
    if [ -x "$nm/.bin/azurite-blob" ] && [ -d "$nm/@azure/storage-blob" ]; then
        return 0
    fi
    command -v npm >/dev/null || die "npm is needed to install Azurite"
    log "installing azurite $AZURITE_VERSION and @azure/storage-blob $AZURE_BLOB_VERSION (npm)"
    mkdir -p "$SERVERS/node"
    (cd "$SERVERS/node" && npm install --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION" "@azure/storage-blob@$AZURE_BLOB_VERSION" >/dev/null) ||
        die "npm install azurite failed"
}

install_promtool() {
    if command -v promtool >/dev/null; then
        return 0
    fi
    log "installing promtool (Debian package prometheus)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null ||
        { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; } ||
        die "apt-get install prometheus failed"
    # The package starts a server at install on some systems: the tests
    # need only promtool.
    as_root systemctl stop prometheus >/dev/null 2>&1 || true
}

case "${1:-}" in
    install)
        install_s3s
        install_azurite
        install_promtool
        "$SERVERS/bin/s3s-fs" --version >&2
        log "azurite $(node -p "require('$SERVERS/node/node_modules/azurite/package.json').version"), $(promtool --version 2>&1 | head -n1)"
        ;;
    env)
        echo "export ETCD_RESCUE_SERVERS=$SERVERS"
        ;;
    *)
        echo "usage: $0 install|env" >&2
        exit 2
        ;;
esac
