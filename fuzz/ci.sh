#!/usr/bin/env bash
# CI: a short fuzzing run of every target (FUZZ_SECONDS each, 20 by
# default), seeded from fuzz/seeds, fuzz/regressions and the fixtures.
# Fails on any crash, hang (timeout) or out-of-memory, leaving the input in
# fuzz/artifacts/<target>/. Without cargo-fuzz and a nightly toolchain it
# says fuzzing is skipped and succeeds. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! cargo +nightly fuzz --version > /dev/null 2>&1; then
    echo "fuzz/ci.sh: cargo-fuzz or the nightly toolchain is not installed: fuzzing skipped"
    exit 0
fi

SECONDS_EACH=${FUZZ_SECONDS:-20}
# target:max_len (bytes), as in docs/fuzzing.md.
TARGETS=(
    batch_containers:65536
    bolt_cursor:131072
    bolt_meta:16384
    bolt_scan:131072
    bolt_writer_roundtrip:65536
    k8s_value:16384
    mvcc_kv:4096
    salvage:131072
    snap_file:16384
    snap_writer_roundtrip:4096
    wal_entry:8192
    wal_records:65536
    wal_writer_roundtrip:16384
)

bash seed.sh > /dev/null
cargo +nightly fuzz build

failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for tl in "${TARGETS[@]}"; do
    t=${tl%%:*}
    max_len=${tl#*:}
    echo "== fuzzing $t for ${SECONDS_EACH}s"
    if cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 > "$log" 2>&1; then
        grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)' "$log" || true
    else
        tail -n 60 "$log"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/ci.sh: failures in: ${failed[*]} (inputs in fuzz/artifacts/<target>/; see docs/fuzzing.md)"
    exit 1
fi
echo "fuzz/ci.sh: every target ran ${SECONDS_EACH}s without a crash"
