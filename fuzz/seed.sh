#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ for every fuzz target: the committed seeds
# (fuzz/seeds/<target>/), the inputs that once crashed
# (fuzz/regressions/<target>/), and inputs cut from the real-etcd fixtures
# (testdata/fixtures, testdata/k8s). The corpora are not committed; running
# this again only adds files. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
FX=../testdata/fixtures
TARGETS=(batch_containers bolt_cursor bolt_meta bolt_scan bolt_writer_roundtrip k8s_value
    mvcc_kv salvage snap_file snap_writer_roundtrip wal_entry wal_records wal_writer_roundtrip)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    for kind in seeds regressions; do
        if [ -d "$kind/$t" ]; then
            # -L: some seeds are links to fixtures.
            find -L "$kind/$t" -maxdepth 1 -type f -exec cp -L {} "corpus/$t/" \;
        fi
    done
done

# bbolt dbs: every snapshot fixture and the Kubernetes objects db.
for t in bolt_scan bolt_meta bolt_cursor salvage; do
    for v in v3.4.23 v3.5.1; do
        cp "$FX/$v/single.snapshot.db" "corpus/$t/$v-single.db"
        cp "$FX/$v/cluster.snapshot.db" "corpus/$t/$v-cluster.db"
    done
    cp ../testdata/k8s/objects.snapshot.db "corpus/$t/k8s-objects.db"
done

# Containers around a db.
gzip -c "$FX/v3.5.1/cluster.snapshot.db" > corpus/batch_containers/cluster.gz
tar -cf corpus/batch_containers/cluster.tar -C "$FX/v3.5.1" cluster.snapshot.db
if command -v zstd > /dev/null; then
    zstd -q -c "$FX/v3.5.1/cluster.snapshot.db" > corpus/batch_containers/cluster.zst
fi

# Data dirs: WAL segments (their written head: segments are preallocated
# to 64 MB of zeros) and .snap files.
for v in v3.4.23 v3.5.1; do
    for d in cluster killed single snapcount; do
        mkdir -p "$TMP/$v/$d"
        tar -xzf "$FX/$v/$d.datadir.tar.gz" -C "$TMP/$v/$d"
        i=0
        prev=
        while IFS= read -r w; do
            i=$((i + 1))
            head -c 65536 "$w" > "corpus/wal_records/$v-$d-$i.wal"
            head -c 4096 "$w" > "corpus/wal_entry/$v-$d-$i-head"
            # Two segments of one dir as one input (see wal_records.rs).
            if [ -n "$prev" ]; then
                { head -c 16384 "$prev"; printf '\n--next-segment--\n'; head -c 16384 "$w"; } \
                    > "corpus/wal_records/$v-$d-$((i - 1))-$i-two-segments"
            fi
            case "$w" in */wal/0000000000000000-*) prev=$w ;; *) prev= ;; esac
        done < <(find "$TMP/$v/$d" -path '*/wal/*.wal' | sort)
        find "$TMP/$v/$d" -name '*.snap' | sort | while IFS= read -r s; do
            cp "$s" "corpus/snap_file/$v-$d-$(basename "$s")"
        done
    done
done

# Structured-input targets: random bytes are as good a start as any.
for t in bolt_writer_roundtrip wal_writer_roundtrip snap_writer_roundtrip; do
    head -c 4096 /dev/urandom > "corpus/$t/random"
done

for t in "${TARGETS[@]}"; do
    printf '%-24s %4d inputs\n' "$t" "$(find "corpus/$t" -type f | wc -l)"
done
