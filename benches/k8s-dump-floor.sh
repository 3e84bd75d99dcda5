#!/usr/bin/env bash
# `k8s dump` beside its floor, on the same machine in one run.
#
#   bash benches/k8s-dump-floor.sh [SNAPSHOT] [RUNS]
#
#   SNAPSHOT  default: target/bench/k8s100k.snapshot.db
#             (make it with: bash benches/gen-k8s-snapshot.sh target/bench/k8s100k.snapshot.db 100320)
#   RUNS      timed runs of each (default 3; the median is reported)
#
# The floor is `cp -a` of the very tree the per-file dump wrote: creating
# the same files with the same contents, with nothing to decode. Timed with
# a warm page cache, output on the same file system (target/bench/), no
# fsync by any of them. Compared:
#   files      k8s dump --out DIR                    (one file per object)
#   floor      cp -a DIR DIR2
#   multi-doc  k8s dump --out DIR --format multi-doc (one file per namespace)
#   tar        k8s dump --out - > FILE               (one tar stream)
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SNAP="${1:-$REPO_ROOT/target/bench/k8s100k.snapshot.db}"
RUNS="${2:-3}"
BIN="${ETCD_RESCUE_BIN:-$REPO_ROOT/target/release/etcd-rescue}"
WORK="$REPO_ROOT/target/bench/k8s-floor"
CFG="$REPO_ROOT/testdata/k8s/encryption-config.yaml"
[ -f "$SNAP" ] || { echo "k8s-dump-floor: $SNAP missing (see the header)" >&2; exit 2; }
[ -x "$BIN" ] || (cd "$REPO_ROOT" && cargo build --release)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$SNAP" > /dev/null
rm -rf "$WORK"
mkdir -p "$WORK"
python3 - "$BIN" "$SNAP" "$WORK" "$CFG" "$RUNS" <<'PY'
import json, os, shutil, statistics, subprocess, sys, time
bin_, snap, work, cfg, runs = sys.argv[1:]
runs = int(runs)
def timed(cmd, out=subprocess.DEVNULL):
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.DEVNULL)
    return time.time() - t0
def clear(p):
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.remove(p)
    subprocess.run(["sync"])
dump = [bin_, "k8s", "dump", snap, "--encryption-config", cfg]
t = {"files": [], "floor": [], "multi-doc": [], "tar": []}
for _ in range(runs):
    files, copy, multi, tar = (os.path.join(work, n) for n in ("files", "copy", "multi", "dump.tar"))
    for p in (files, copy, multi, tar):
        clear(p)
    t["files"].append(timed(dump + ["--out", files]))
    t["floor"].append(timed(["cp", "-a", files, copy]))
    t["multi-doc"].append(timed(dump + ["--out", multi, "--format", "multi-doc"]))
    with open(tar, "wb") as f:
        t["tar"].append(timed(dump + ["--out", "-"], out=f))
nfiles = sum(len(fs) for _, _, fs in os.walk(os.path.join(work, "files")))
med = {k: statistics.median(v) for k, v in t.items()}
print(json.dumps({
    "snapshot_bytes": os.path.getsize(snap),
    "files_written": nfiles,
    "runs": runs,
    "seconds_median": {k: round(v, 2) for k, v in med.items()},
    "files_over_floor": round(med["files"] / med["floor"], 2),
    "files_over_multi_doc": round(med["files"] / med["multi-doc"], 2),
    "files_over_tar": round(med["files"] / med["tar"], 2),
}, indent=2))
PY
