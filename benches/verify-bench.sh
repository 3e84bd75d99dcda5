#!/usr/bin/env bash
# Batch verification benchmark: 100 real-etcd snapshot files (copies and
# gzip/zstd variants of one ~26 MiB snapshot made by real etcd 3.5.1, about
# 2.4 GB in all): speed-up of 2 threads over 1, and a second run with the
# catalog against the first.
#
#   bash benches/verify-bench.sh            (numbers on an idle machine only)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/target/bench"
SNAP="$BENCH/small.snapshot.db"
STORE="$BENCH/store100"
BIN="$REPO/target/release/etcd-rescue"

[ -x "$BIN" ] || (cd "$REPO" && cargo build --release)
[ -f "$SNAP" ] || bash "$REPO/benches/gen-big-snapshot.sh" "$SNAP" 26
if [ ! -f "$STORE/.complete" ]; then
    rm -rf "$STORE"; mkdir -p "$STORE/plain" "$STORE/gzip" "$STORE/zstd"
    base=1763780400
    for i in $(seq 0 79); do cp "$SNAP" "$STORE/plain/etcd-snapshot-m1-$((base + i * 3600)).db"; done
    for i in $(seq 0 9); do gzip -1 -c "$SNAP" > "$STORE/gzip/etcd-snapshot-m2-$((base + i * 3600)).db.gz"; done
    for i in $(seq 0 9); do zstd -q -1 -c "$SNAP" > "$STORE/zstd/etcd-snapshot-m3-$((base + i * 3600)).db.zst"; done
    touch "$STORE/.complete"
fi
echo "store: $(find "$STORE" -type f -name 'etcd-*' | wc -l) files, $(du -sb "$STORE" | cut -f1) bytes on disk"
cat "$STORE"/*/* > /dev/null   # warm the page cache

t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
# The median of RUNS runs (hyperfine when installed: one run is too noisy on
# a shared 2-core machine), else one timed run.
RUNS=${RUNS:-7}
median() {
    if command -v hyperfine > /dev/null; then
        local j="$BENCH/verify-bench-hf.json"
        hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$j" "$*" > /dev/null 2>&1
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$j"
    else
        t "$@"
    fi
}
CAT="$BENCH/verify-bench.redb"
j1=$(median "$BIN" verify --no-catalog --jobs 1 "$STORE")
j2=$(median "$BIN" verify --no-catalog --jobs 2 "$STORE")
rm -f "$CAT"
first=$(t "$BIN" verify --catalog "$CAT" "$STORE")
second=$(t "$BIN" verify --catalog "$CAT" "$STORE")
printf '%-40s %8.2f s\n' "verify, 1 thread, no catalog" "$j1" "verify, 2 threads, no catalog" "$j2" \
    "verify, first run with catalog" "$first" "verify, second run (catalog)" "$second"
printf 'speed-up 2 threads over 1: %.2fx (target >= 1.8x)\n' "$(echo "$j1 / $j2" | bc -l)"
printf 'second run vs first run:   %.0fx faster (target >= 50x)\n' "$(echo "$first / $second" | bc -l)"
