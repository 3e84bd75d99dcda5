#!/usr/bin/env bash
# Seeds the fuzz corpora from the real-etcd fixtures (the corpora are not
# committed; fuzz/regressions/ holds the inputs that once crashed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
FX=../testdata/fixtures
for t in bolt_scan bolt_meta bolt_cursor; do
    mkdir -p "corpus/$t"
    for v in v3.4.23 v3.5.1; do
        cp "$FX/$v/single.snapshot.db" "corpus/$t/$v-single.db"
        cp "$FX/$v/cluster.snapshot.db" "corpus/$t/$v-cluster.db"
    done
done
mkdir -p corpus/batch_containers
gzip -c "$FX/v3.5.1/cluster.snapshot.db" > corpus/batch_containers/cluster.gz
tar -cf corpus/batch_containers/cluster.tar -C "$FX/v3.5.1" cluster.snapshot.db
mkdir -p corpus/mvcc_kv corpus/bolt_writer_roundtrip
printf '\x0a\x05/demo\x10\x02\x18\x03\x20\x01\x2a\x01x' > corpus/mvcc_kv/kv
head -c 4096 /dev/urandom > corpus/bolt_writer_roundtrip/random
