#!/usr/bin/env bash
# Benchmark `etcd-rescue k8s dump` on a big snapshot of real Kubernetes objects.
#
#   bash benches/k8s-dump.sh [SNAPSHOT] [OUTDIR]
#
#   SNAPSHOT  default: target/bench/k8s.snapshot.db (make it with gen-k8s-snapshot.sh)
#   OUTDIR    default: target/bench/k8s-dump (deleted before the run)
#
# Runs the dump once with a warm page cache and prints wall time, objects per
# second, peak RSS (getrusage of the child; for an mmap reader this counts the
# page-cache pages of the file it touched) and peak anonymous memory (RssAnon
# sampled from /proc every 20 ms: the heap, what "bounded" is about).
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SNAP="${1:-$REPO_ROOT/target/bench/k8s.snapshot.db}"
OUTDIR="${2:-$REPO_ROOT/target/bench/k8s-dump}"
BIN="${ETCD_RESCUE_BIN:-$REPO_ROOT/target/release/etcd-rescue}"
[ -f "$SNAP" ] || { echo "k8s-dump: $SNAP missing: run benches/gen-k8s-snapshot.sh" >&2; exit 2; }
[ -x "$BIN" ] || (cd "$REPO_ROOT" && cargo build --release)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$SNAP" > /dev/null
rm -rf "$OUTDIR"
python3 - "$BIN" "$SNAP" "$OUTDIR" "$REPO_ROOT/testdata/k8s/encryption-config.yaml" <<'PY'
import json, os, resource, subprocess, sys, time
bin_, snap, out, cfg = sys.argv[1:]
cmd = [bin_, "-o", "json", "k8s", "dump", snap, "--out", out, "--encryption-config", cfg]
t0 = time.time()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
peak_anon = peak_rss = 0
while p.poll() is None:
    try:
        for line in open("/proc/%d/status" % p.pid):
            if line.startswith("RssAnon:"):
                peak_anon = max(peak_anon, int(line.split()[1]))
            elif line.startswith("VmRSS:"):
                peak_rss = max(peak_rss, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.02)
secs = time.time() - t0
summary = json.loads(p.stdout.read())
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
size = os.path.getsize(snap)
print(json.dumps({
    "snapshot_bytes": size,
    "objects": summary["objects"],
    "written": summary["written"],
    "failed": len(summary["failures"]),
    "seconds": round(secs, 2),
    "objects_per_second": round(summary["objects"] / secs),
    "mb_per_second": round(size / secs / 1e6, 1),
    "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
    "peak_anon_rss_mb_sampled": round(peak_anon / 1024, 1),
    "exit_code": p.returncode,
}, indent=2))
PY
