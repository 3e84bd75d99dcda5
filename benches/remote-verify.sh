#!/usr/bin/env bash
# verify over S3: the 100 snapshots of benches/verify-bench.sh (2.9 GB; 80
# plain, 10 gzip, 10 zstd) in a loopback S3 server (s3s-fs, from
# testdata/servers.sh), against verify of the same files on disk and
# against curl fetching the objects (the server's floor), in one run: wall
# time and peak RSS of each, and a second run with the catalog (objects
# whose ETag is unchanged are not downloaded again).
#
#   bash benches/verify-bench.sh    # once, to make target/bench/store100
#   bash benches/remote-verify.sh   (numbers on an idle machine only)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/target/bench"
STORE="$BENCH/store100"
BIN="$REPO/target/release/etcd-rescue"
[ -f "$STORE/.complete" ] || { echo "no $STORE: run bash benches/verify-bench.sh first" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$REPO" && cargo build --release)
bash "$REPO/testdata/servers.sh" install
. <(bash "$REPO/testdata/servers.sh" env)

# The bucket is hard links to the store's files (s3s-fs serves a directory;
# it does not follow symlinks).
ROOT="$BENCH/s3root"
rm -rf "$ROOT"
mkdir -p "$ROOT"
cp -al "$STORE" "$ROOT/store100"
rm -f "$ROOT/store100/.complete"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
"$ETCD_RESCUE_SERVERS/bin/s3s-fs" --host 127.0.0.1 --port "$PORT" \
    --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$ROOT" > /dev/null 2>&1 &
S3S=$!
trap 'kill $S3S 2>/dev/null; rm -rf "$ROOT"' EXIT
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

echo "store: $(find "$STORE" -type f -name 'etcd-*' | wc -l) files, $(du -sb "$STORE" | cut -f1) bytes; load average $(cut -d' ' -f1 /proc/loadavg)"
cat "$STORE"/*/* > /dev/null   # warm the page cache for both sides

# Wall seconds and peak RSS (MiB) of one run; its exit code must be 0.
measure() {
    local out="$BENCH/remote-verify.time"
    /usr/bin/time -f '%e %M' -o "$out" "$@" > /dev/null
    awk '{printf "%8.2f s %8.1f MiB", $1, $2 / 1024}' "$out"
}
CAT="$BENCH/remote-verify.redb"
rm -f "$CAT"
# The floor: the same objects fetched by curl (SigV4), 2 at once, to /dev/null.
floor_get() {
    (cd "$ROOT/store100" && find . -type f | sed 's|^\./||' | sort |
        xargs -P2 -I{} curl -sf --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
            --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
            "$AWS_ENDPOINT_URL/store100/{}" -o /dev/null)
}
floor=$(measure bash -c "$(declare -f floor_get); ROOT='$ROOT'; floor_get")
local2=$(measure "$BIN" verify --no-catalog --jobs 2 "$STORE")
s3_2=$(measure "$BIN" verify --no-catalog --jobs 2 --download-jobs 2 s3://store100/)
s3_4=$(measure "$BIN" verify --no-catalog --jobs 2 --download-jobs 4 s3://store100/)
first=$(measure "$BIN" verify --catalog "$CAT" --jobs 2 s3://store100/)
second=$(measure "$BIN" verify --catalog "$CAT" --jobs 2 s3://store100/)
printf '%-52s %s\n' \
    "floor: curl, 2 GETs at once, to /dev/null" "$floor" \
    "local files, 2 threads, no catalog" "$local2" \
    "s3://, 2 threads, 2 downloads at once, no catalog" "$s3_2" \
    "s3://, 2 threads, 4 downloads at once, no catalog" "$s3_4" \
    "s3://, first run with catalog" "$first" \
    "s3://, second run (catalog: nothing downloaded)" "$second"
secs() { echo "$1" | awk '{print $1}'; }
printf 's3 / local wall time:        %.2fx\n' "$(echo "$(secs "$s3_2") / $(secs "$local2")" | bc -l)"
printf 's3 / curl floor:             %.2fx\n' "$(echo "$(secs "$s3_2") / $(secs "$floor")" | bc -l)"
printf 'second run vs first (s3):    %.0fx faster\n' "$(echo "$(secs "$first") / $(secs "$second")" | bc -l)"
