#!/usr/bin/env bash
# Generate etcd-rescue test fixtures with REAL etcd binaries (3.4.23 and 3.5.1).
#
#   bash testdata/gen-fixtures.sh [OUTDIR]        (default OUTDIR: testdata/fixtures)
#
# For each version it writes OUTDIR/v<version>/ with the artifacts described in
# testdata/README.md (single, cluster, killed, snapcount, versions.txt). The
# recorded etcdctl/etcdutl outputs are the oracle the Rust tests compare against.
#
# Environment:
#   VERSIONS            versions to generate (default: "3.4.23 3.5.1")
#   ETCD_RESCUE_TOOLS   passed on to testdata/etcd.sh (where etcd 3.5.1 is unpacked)
#   KEEP_WORK=1         keep the temporary work dir (data dirs, logs) for debugging
#
# etcd only ever listens on 127.0.0.1, on free ports in 23000-24999.
set -euo pipefail
export LC_ALL=C

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUTDIR="${1:-$SCRIPT_DIR/fixtures}"
VERSIONS="${VERSIONS:-3.4.23 3.5.1}"

T_START=$(date +%s)

say() { echo "gen-fixtures: $*" >&2; }

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || { echo "gen-fixtures: ERROR: python3 is required" >&2; exit 1; }
command -v tar >/dev/null 2>&1 || { echo "gen-fixtures: ERROR: GNU tar is required" >&2; exit 1; }
command -v gzip >/dev/null 2>&1 || { echo "gen-fixtures: ERROR: gzip is required" >&2; exit 1; }

bash "$SCRIPT_DIR/etcd.sh" install
eval "$(bash "$SCRIPT_DIR/etcd.sh" env)"
: "${ETCD34_BIN:?}" "${ETCD35_BIN:?}"

# ---------------------------------------------------------------------------
# Work dir, process bookkeeping, cleanup
# ---------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/etcd-rescue-fixtures.XXXXXX")"
LOGDIR="$WORK/logs"
mkdir -p "$LOGDIR" "$WORK/resp"

declare -A PID_OF=()   # member name -> pid of a running etcd we started
declare -A LOG_OF=()   # member name -> its log file
declare -A USED_PORTS=()
CUR_LOGS=()            # logs of the scenario being generated (tailed on failure)
RESP_N=0

show_logs() {
    local l
    for l in "${CUR_LOGS[@]}"; do
        [ -f "$l" ] || continue
        echo "----- last 40 lines of $l -----" >&2
        tail -n 40 "$l" >&2 || true
    done
}

cleanup() {
    local rc=$?
    local name pid
    for name in "${!PID_OF[@]}"; do
        pid="${PID_OF[$name]}"
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "$rc" -ne 0 ]; then
        echo "gen-fixtures: FAILED (exit $rc)" >&2
        show_logs
        [ "${KEEP_WORK:-0}" = 1 ] || echo "gen-fixtures: re-run with KEEP_WORK=1 to keep the logs and data dirs" >&2
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "gen-fixtures: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "gen-fixtures: ERROR: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------
NEXT_PORT=23000
PORT=

port_busy() {
    local p=$1
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        return 0
    fi
    if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
        return 0
    fi
    return 1
}

# Sets PORT to the next free port (never handing out the same port twice).
alloc_port() {
    local p
    while :; do
        p=$NEXT_PORT
        NEXT_PORT=$((NEXT_PORT + 1))
        [ "$p" -le 24999 ] || die "no free port left in 23000-24999"
        if [ -z "${USED_PORTS[$p]:-}" ] && ! port_busy "$p"; then
            USED_PORTS[$p]=1
            PORT=$p
            return 0
        fi
    done
}

# ---------------------------------------------------------------------------
# etcd / etcdctl helpers (per version globals: VER, ETCD, ETCDCTL, CTL_ENV)
# ---------------------------------------------------------------------------
EP=""   # default endpoint(s) for c()

# ctl ENDPOINTS ARGS... : run etcdctl; on failure print its stderr and fail.
ctl() {
    local eps=$1
    shift
    local rc=0
    env "${CTL_ENV[@]}" "$ETCDCTL" --endpoints="$eps" --dial-timeout=5s --command-timeout=60s "$@" \
        2>"$WORK/ctl.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "gen-fixtures: etcdctl $* (endpoints $eps) failed with exit $rc:" >&2
        cat "$WORK/ctl.err" >&2
        return "$rc"
    fi
}

c() { ctl "$EP" "$@"; }

# snapshot_status FILE : JSON status of a bbolt file, as the version's own tool prints it.
snapshot_status() {
    local f=$1 rc=0
    if [ "$VER" = 3.4.23 ]; then
        env ETCDCTL_API=3 "$ETCDCTL" snapshot status "$f" -w json 2>"$WORK/ctl.err" || rc=$?
    else
        "$ETCDUTL" snapshot status "$f" -w json 2>"$WORK/ctl.err" || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        echo "gen-fixtures: snapshot status $f failed with exit $rc:" >&2
        cat "$WORK/ctl.err" >&2
        return "$rc"
    fi
}

# start_member NAME DATADIR TOKEN CLIENT_PORT PEER_PORT INITIAL_CLUSTER [EXTRA ETCD FLAGS...]
start_member() {
    local name=$1 dd=$2 token=$3 cport=$4 pport=$5 ic=$6
    shift 6
    local log="$LOGDIR/v$VER-$SCENARIO-$name.log"
    CUR_LOGS+=("$log")
    mkdir -p "$(dirname "$dd")"
    "$ETCD" \
        --name "$name" \
        --data-dir "$dd" \
        --logger=zap --log-outputs=stderr \
        --initial-cluster-token "$token" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --listen-client-urls "http://127.0.0.1:$cport" \
        --advertise-client-urls "http://127.0.0.1:$cport" \
        --initial-cluster "$ic" \
        --initial-cluster-state new \
        "$@" >"$log" 2>&1 &
    PID_OF[$name]=$!
    LOG_OF[$name]=$log
}

# wait_healthy ENDPOINTS NAME... : wait (<= 30 s) until `endpoint health` succeeds.
wait_healthy() {
    local eps=$1
    shift
    local deadline=$((SECONDS + 30)) name
    while :; do
        for name in "$@"; do
            kill -0 "${PID_OF[$name]}" 2>/dev/null || die "etcd $VER member '$name' exited during startup (log: ${LOG_OF[$name]})"
        done
        if env "${CTL_ENV[@]}" "$ETCDCTL" --endpoints="$eps" --dial-timeout=1s --command-timeout=2s \
            endpoint health >/dev/null 2>&1; then
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "etcd $VER ($*) not healthy after 30 s at $eps"
        sleep 0.2
    done
}

# True while the process exists and is not a zombie.
alive() {
    local pid=$1 st
    [ -r "/proc/$pid/stat" ] || return 1
    st="$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop_member NAME [SIGNAL] : send SIGTERM (default) or SIGKILL and wait for exit.
stop_member() {
    local name=$1 sig=${2:-TERM}
    local pid="${PID_OF[$name]}" deadline=$((SECONDS + 60))
    kill "-$sig" "$pid" 2>/dev/null || die "could not send SIG$sig to etcd '$name' (pid $pid): not running?"
    while alive "$pid"; do
        [ "$SECONDS" -lt "$deadline" ] || die "etcd '$name' (pid $pid) did not exit within 60 s after SIG$sig"
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
    unset "PID_OF[$name]"
}

# ---------------------------------------------------------------------------
# Operation log (single.expect/ops.jsonl)
# ---------------------------------------------------------------------------
OPS_TSV=""

hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
hexfile() { od -An -v -tx1 <"$1" | tr -d ' \n'; }

new_resp() {
    RESP_N=$((RESP_N + 1))
    RESP="$WORK/resp/$RESP_N.out"
}

# oplog OP KEY_HEX VALUE_HEX RESP_FILE [EXTRA_JSON] [TXN_FILE]
oplog() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" >>"$OPS_TSV"
}

# rev_of FILE : first "revision":N in an etcdctl JSON output (the header revision).
rev_of() {
    local r
    r="$(grep -o '"revision":[0-9]*' "$1" | head -n1 | cut -d: -f2)"
    [ -n "$r" ] || die "no revision found in $1: $(head -c 300 "$1")"
    echo "$r"
}

put() { # KEY VALUE [EXTRA_JSON] [ETCDCTL PUT FLAGS...]
    local key=$1 val=$2 extra=${3:-}
    shift 2
    [ $# -gt 0 ] && shift
    new_resp
    c put -w json "$@" "$key" "$val" >"$RESP"
    oplog put "$(hex "$key")" "$(hex "$val")" "$RESP" "$extra"
}

put_file() { # KEY FILE [EXTRA_JSON] : value read by etcdctl from stdin (may contain NUL)
    local key=$1 f=$2 extra=${3:-}
    new_resp
    c put -w json "$key" <"$f" >"$RESP"
    oplog put "$(hex "$key")" "$(hexfile "$f")" "$RESP" "$extra"
}

del() { # KEY [EXTRA_JSON] [ETCDCTL DEL FLAGS...]
    local key=$1 extra=${2:-}
    shift
    [ $# -gt 0 ] && shift
    new_resp
    c del -w json "$@" "$key" >"$RESP"
    oplog del "$(hex "$key")" "" "$RESP" "$extra"
}

txn() { # TXN_STDIN_FILE [EXTRA_JSON]
    local f=$1 extra=${2:-}
    new_resp
    c txn -w json <"$f" >"$RESP"
    oplog txn "" "" "$RESP" "$extra" "$f"
}

# Write ops.jsonl from the TSV log.
finish_ops() {
    local out=$1
    python3 - "$OPS_TSV" "$out" <<'PY'
import json, sys

tsv, out = sys.argv[1], sys.argv[2]

def text(b):
    """(string, is_utf8)"""
    try:
        return b.decode("utf-8"), True
    except UnicodeDecodeError:
        return b.decode("utf-8", errors="replace"), False

def put_kv(obj, name, raw):
    s, ok = text(raw)
    obj[name] = s
    if not ok:
        obj[name + "_hex"] = raw.hex()

def parse_txn(path):
    lines = open(path, "rb").read().split(b"\n")
    sections, cur = [], []
    for ln in lines:
        if ln == b"":
            sections.append(cur)
            cur = []
        else:
            cur.append(ln)
    while len(sections) < 3:
        sections.append([])
    compares = [text(l)[0] for l in sections[0]]
    def ops(sec):
        res = []
        for l in sec:
            parts = l.split(b" ", 2)
            o = {"op": parts[0].decode()}
            put_kv(o, "key", parts[1])
            if parts[0] == b"put":
                put_kv(o, "value", parts[2] if len(parts) > 2 else b"")
            elif len(parts) > 2:
                put_kv(o, "range_end", parts[2])
            res.append(o)
        return res
    return compares, ops(sections[1]), ops(sections[2])

with open(tsv, "rb") as f, open(out, "w") as w:
    for line in f:
        op, khex, vhex, resp_path, extra, txn_file = line.rstrip(b"\n").split(b"\t")
        obj = {"op": op.decode()}
        if khex:
            put_kv(obj, "key", bytes.fromhex(khex.decode()))
        if vhex or op == b"put":
            put_kv(obj, "value", bytes.fromhex(vhex.decode()))
        resp = None
        if resp_path:
            raw = open(resp_path.decode(), "rb").read()
            try:
                resp = json.loads(raw)
            except ValueError:
                resp = None
                obj["output"] = raw.decode("utf-8", errors="replace").strip()
        if isinstance(resp, dict):
            hdr = resp.get("header") or {}
            rev = hdr.get("revision", resp.get("revision"))
            if rev is not None:
                obj["rev"] = rev
            if op == b"del":
                obj["deleted"] = resp.get("deleted", 0)
            if op == b"txn":
                obj["succeeded"] = bool(resp.get("succeeded", False))
            if op == b"lease-grant":
                obj["lease_id"] = resp["ID"]
                obj["lease_id_hex"] = "%x" % resp["ID"]
                obj["ttl"] = resp["TTL"]
        if txn_file:
            cmp_, succ, fail = parse_txn(txn_file.decode())
            obj["compares"] = cmp_
            obj["success"] = succ
            obj["failure"] = fail
        if extra:
            obj.update(json.loads(extra))
        w.write(json.dumps(obj, ensure_ascii=False) + "\n")
PY
}

# check_replay EXPECT_DIR : replay ops.jsonl and check that it reproduces every
# get-rev-<N>.json and get-final.json exactly (keys, values, create/mod
# revisions, versions, leases). Guards the oracle against script mistakes.
check_replay() {
    python3 - "$1" <<'PY'
import base64, glob, json, os, sys

d = sys.argv[1]
ops = [json.loads(l) for l in open(os.path.join(d, "ops.jsonl"))]

def raw(o, f):
    return bytes.fromhex(o[f + "_hex"]) if f + "_hex" in o else o[f].encode()

state, at_rev, lease_keys, rev = {}, {}, {}, 1

def put(k, v, r, lease=0):
    old = state.get(k)
    state[k] = (v, old[1] if old else r, r, old[3] + 1 if old else 1, lease)

def delete(k, prefix=False):
    ks = [x for x in state if (x.startswith(k) if prefix else x == k)]
    for x in ks:
        del state[x]
    return len(ks)

for o in ops:
    op = o["op"]
    if op == "put":
        put(raw(o, "key"), raw(o, "value"), o["rev"], o.get("lease_id", 0))
        if "lease_id" in o:
            lease_keys.setdefault(o["lease_id"], []).append(raw(o, "key"))
    elif op == "del":
        n = delete(raw(o, "key"), o.get("prefix", False))
        if n != o["deleted"]:
            sys.exit("replay: %r deleted %d keys, etcd said %d" % (o, n, o["deleted"]))
    elif op == "txn":
        for s in (o["success"] if o["succeeded"] else o["failure"]):
            if s["op"] == "put":
                put(raw(s, "key"), raw(s, "value"), o["rev"])
            else:
                delete(raw(s, "key"))
    elif op == "lease-revoke":
        for k in lease_keys.get(o["lease_id"], []):
            delete(k)
    if op not in ("compact", "snapshot-save") and "rev" in o:
        rev = o["rev"]
    at_rev[rev] = dict(state)

def check(path, want):
    g = json.load(open(path))
    got = {base64.b64decode(kv["key"]): (base64.b64decode(kv.get("value", "")), kv["create_revision"],
                                          kv["mod_revision"], kv["version"], kv.get("lease", 0))
           for kv in g.get("kvs", [])}
    if got != want:
        bad = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        sys.exit("replay: %s differs from ops.jsonl replay for keys %r" % (path, bad[:5]))

files = glob.glob(os.path.join(d, "get-rev-*.json"))
for path in files:
    n = int(os.path.basename(path)[len("get-rev-"):-len(".json")])
    check(path, at_rev[n])
check(os.path.join(d, "get-final.json"), state)
print("replay of %d ops matches %d get-rev files and get-final.json" % (len(ops), len(files)), file=sys.stderr)
PY
}

# archive OUT.tar.gz DIR ENTRY... : reproducible tarball of DIR/ENTRY...
archive() {
    local out=$1 dir=$2
    shift 2
    tar --sparse --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        -C "$dir" -cf - "$@" | gzip -n -9 >"$out"
}

# ---------------------------------------------------------------------------
# Scenario A: single
# ---------------------------------------------------------------------------
gen_single() {
    SCENARIO=single
    CUR_LOGS=()
    local dd="$VWORK/single" exp="$VOUT/single.expect"
    mkdir -p "$exp"
    OPS_TSV="$VWORK/single.ops.tsv"
    : >"$OPS_TSV"

    alloc_port; local cport=$PORT
    alloc_port; local pport=$PORT
    start_member single "$dd" fixture-single "$cport" "$pport" "single=http://127.0.0.1:$pport"
    EP="127.0.0.1:$cport"
    wait_healthy "$EP" single

    local i j f key

    # 1. 300 small keys: 150 single puts, then 15 txns of 10 puts each.
    for ((i = 0; i < 150; i++)); do
        put "$(printf '/demo/items/item-%04d' "$i")" "$(printf 'value-%04d' "$i")"
    done
    for ((i = 150; i < 300; i += 10)); do
        f="$VWORK/txn-items-$i"
        {
            echo
            for ((j = i; j < i + 10; j++)); do
                printf 'put /demo/items/item-%04d value-%04d\n' "$j" "$j"
            done
            echo
            echo
        } >"$f"
        txn "$f"
    done

    # 2. overwrites of one key
    for i in 1 2 3 4 5 6; do
        put /demo/counter "$i"
    done
    local compact_rev
    compact_rev="$(rev_of "$RESP")"

    # 3. non-UTF-8 key and value (value contains NUL, so it goes through stdin)
    key=$'/demo/bin/\xff\xfe'
    printf '\x00\x01\xff' >"$VWORK/bin-value"
    put_file "$key" "$VWORK/bin-value"

    # 4. one large value (~20 KB, overflow pages)
    for ((i = 0; i < 400; i++)); do
        printf 'line %03d: the quick brown fox jumps over the lazy dog\n' "$i"
    done >"$VWORK/large-value"
    put_file /demo/large "$VWORK/large-value"

    # 5. deletes, and a second generation of /demo/counter
    del /demo/items/item-0001
    del /demo/items/item-00 '{"prefix":true}' --prefix
    del /demo/counter
    put /demo/counter 7
    put /demo/counter 8

    # 6. txns: one whose compares succeed, one whose compares fail
    f="$VWORK/txn-ok"
    printf '%s\n' 'value("/demo/counter") = "8"' 'create("/demo/txn/ok") = "0"' '' \
        'put /demo/txn/ok yes' 'del /demo/large' '' \
        'put /demo/txn/failed no' '' >"$f"
    txn "$f"
    f="$VWORK/txn-fail"
    printf '%s\n' 'version("/demo/counter") = "2"' 'value("/demo/counter") = "999"' '' \
        'put /demo/txn/never x' '' \
        'put /demo/txn/failed no' 'del /demo/items/item-0150' '' >"$f"
    txn "$f"

    # 7. leases
    local l1 l2 l1hex l2hex
    new_resp
    c lease grant 1000000 -w json >"$RESP"
    oplog lease-grant "" "" "$RESP"
    l1="$(grep -o '"ID":[0-9]*' "$RESP" | cut -d: -f2)"
    l1hex="$(printf '%x' "$l1")"
    put /demo/lease/kept kept "{\"lease_id\":$l1,\"lease_id_hex\":\"$l1hex\"}" --lease="$l1hex"
    new_resp
    c lease grant 1000000 -w json >"$RESP"
    oplog lease-grant "" "" "$RESP"
    l2="$(grep -o '"ID":[0-9]*' "$RESP" | cut -d: -f2)"
    l2hex="$(printf '%x' "$l2")"
    put /demo/lease/revoked gone "{\"lease_id\":$l2,\"lease_id_hex\":\"$l2hex\"}" --lease="$l2hex"
    new_resp
    c lease revoke "$l2hex" -w json >"$RESP"
    oplog lease-revoke "" "" "$RESP" "{\"lease_id\":$l2,\"lease_id_hex\":\"$l2hex\"}"
    put /demo/lease/kept2 kept2 "{\"lease_id\":$l1,\"lease_id_hex\":\"$l1hex\"}" --lease="$l1hex"
    put /demo/lease/kept3 kept3 "{\"lease_id\":$l1,\"lease_id_hex\":\"$l1hex\"}" --lease="$l1hex"

    # 8. compaction at the revision right after step 2 (wait for the physical compaction)
    new_resp
    c compaction --physical "$compact_rev" >"$RESP"
    oplog compact "" "" "$RESP" "{\"rev\":$compact_rev,\"physical\":true}"

    # 9. more history above the compact revision
    put /demo/counter 9
    put /demo/counter 10
    put /demo/counter 11
    put /demo/after/a 1
    put /demo/after/b 2
    put /demo/after/c 3
    del /demo/after/b

    # 10. auth data (auth stays disabled)
    new_resp; c user add alice:alicepw -w json >"$RESP"
    oplog user-add "" "" "$RESP" '{"user":"alice","password":"alicepw"}'
    new_resp; c role add reader -w json >"$RESP"
    oplog role-add "" "" "$RESP" '{"role":"reader"}'
    new_resp; c role grant-permission reader read /demo/ --prefix=true -w json >"$RESP"
    oplog role-grant-permission "" "" "$RESP" '{"role":"reader","perm":"read","key":"/demo/","prefix":true}'
    new_resp; c user grant-role alice reader -w json >"$RESP"
    oplog user-grant-role "" "" "$RESP" '{"user":"alice","role":"reader"}'
    new_resp; c user add root:rootpw -w json >"$RESP"
    oplog user-add "" "" "$RESP" '{"user":"root","password":"rootpw"}'
    new_resp; c user grant-role root root -w json >"$RESP"
    oplog user-grant-role "" "" "$RESP" '{"user":"root","role":"root"}'

    # Recordings while the server runs.
    c get "" --prefix -w json >"$exp/get.json"
    local head_rev n
    head_rev="$(rev_of "$exp/get.json")"
    [ "$head_rev" -gt "$compact_rev" ] || die "single: head revision $head_rev not above compact revision $compact_rev"
    for ((n = compact_rev; n <= head_rev; n++)); do
        c get "" --prefix --rev "$n" -w json >"$exp/get-rev-$n.json"
    done
    c endpoint hashkv -w json >"$exp/hashkv.json"
    for ((n = compact_rev; n <= head_rev; n++)); do
        if [ "$n" -eq "$compact_rev" ]; then
            # etcd refuses HashKV at exactly the compact revision (rev <= compactRev
            # is "compacted"); record the refusal instead of a hash.
            local rc=0
            env "${CTL_ENV[@]}" "$ETCDCTL" --endpoints="$EP" --command-timeout=60s \
                endpoint hashkv --rev "$n" -w json >"$WORK/hashkv-c.out" 2>"$WORK/hashkv-c.err" || rc=$?
            if [ "$rc" -eq 0 ]; then
                mv "$WORK/hashkv-c.out" "$exp/hashkv-rev-$n.json"
            else
                grep '^Error:' "$WORK/hashkv-c.err" >"$exp/hashkv-rev-$n.error.txt" ||
                    die "hashkv --rev $n failed without an Error: line: $(cat "$WORK/hashkv-c.err")"
            fi
        else
            c endpoint hashkv --rev "$n" -w json >"$exp/hashkv-rev-$n.json"
        fi
    done
    c member list -w json >"$exp/member-list.json"
    c endpoint status -w json >"$exp/endpoint-status.json"
    c snapshot save "$VOUT/single.snapshot.db" >"$WORK/snapshot-save.out"
    oplog snapshot-save "" "" "" "{\"rev\":$head_rev,\"file\":\"single.snapshot.db\"}"
    snapshot_status "$VOUT/single.snapshot.db" >"$exp/snapshot-status.json"

    # A few writes after the snapshot.
    put /demo/post-snapshot/a a '{"after_snapshot":true}'
    put /demo/post-snapshot/b b '{"after_snapshot":true}'
    del /demo/items/item-0299 '{"after_snapshot":true}'
    c get "" --prefix -w json >"$exp/get-final.json"
    c endpoint status -w json >"$exp/endpoint-status-final.json"

    stop_member single TERM
    finish_ops "$exp/ops.jsonl"
    check_replay "$exp" || die "single: ops.jsonl does not replay to the recorded get outputs"
    archive "$VOUT/single.datadir.tar.gz" "$VWORK" single
    snapshot_status "$dd/member/snap/db" >"$exp/db-status.json"
    say "v$VER single: compact rev $compact_rev, head rev $head_rev (before snapshot), final rev $(rev_of "$exp/get-final.json")"
}

# ---------------------------------------------------------------------------
# Scenario B: cluster (3 members)
# ---------------------------------------------------------------------------
gen_cluster() {
    SCENARIO=cluster
    CUR_LOGS=()
    local base="$VWORK/cluster" exp="$VOUT/cluster.expect"
    mkdir -p "$exp" "$base"
    local -a cports pports names=(m1 m2 m3)
    local i ic="" eps=""
    for i in 0 1 2; do
        alloc_port; cports[i]=$PORT
        alloc_port; pports[i]=$PORT
        ic+="${ic:+,}${names[i]}=http://127.0.0.1:${pports[i]}"
        eps+="${eps:+,}127.0.0.1:${cports[i]}"
    done
    for i in 0 1 2; do
        start_member "${names[i]}" "$base/${names[i]}" fixture-cluster "${cports[i]}" "${pports[i]}" "$ic"
    done
    wait_healthy "$eps" m1 m2 m3

    # Writes, spread over the three members' client endpoints.
    for ((i = 0; i < 50; i++)); do
        ctl "127.0.0.1:${cports[i % 3]}" put "$(printf '/cluster/k%02d' "$i")" "$(printf 'v%02d' "$i")" >/dev/null
    done
    for i in 0 1 2 3 4; do
        ctl "127.0.0.1:${cports[i % 3]}" put "$(printf '/cluster/k%02d' "$i")" "$(printf 'v%02d-overwritten' "$i")" >/dev/null
    done
    ctl "127.0.0.1:${cports[1]}" del /cluster/k49 >/dev/null

    # Wait until all members applied the same revision / index.
    local deadline=$((SECONDS + 30))
    while :; do
        ctl "$eps" endpoint status -w json >"$WORK/cluster-status.json"
        if python3 - "$WORK/cluster-status.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
revs = {s["Status"]["header"]["revision"] for s in st}
applied = {s["Status"].get("raftAppliedIndex") for s in st}
sys.exit(0 if len(st) == 3 and len(revs) == 1 and len(applied) == 1 else 1)
PY
        then
            break
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "cluster members did not converge within 30 s: $(cat "$WORK/cluster-status.json")"
        sleep 0.2
    done

    EP="127.0.0.1:${cports[0]}"
    c get "" --prefix -w json >"$exp/get.json"
    c member list -w json >"$exp/member-list.json"
    ctl "$eps" endpoint status -w json >"$exp/endpoint-status.json"
    ctl "$eps" endpoint hashkv -w json >"$exp/hashkv.json"
    c snapshot save "$VOUT/cluster.snapshot.db" >"$WORK/snapshot-save.out"
    snapshot_status "$VOUT/cluster.snapshot.db" >"$exp/snapshot-status.json"

    for i in 0 1 2; do
        stop_member "${names[i]}" TERM
    done
    archive "$VOUT/cluster.datadir.tar.gz" "$base" m1 m2 m3
    for i in 0 1 2; do
        snapshot_status "$base/${names[i]}/member/snap/db" >"$exp/${names[i]}-db-status.json"
    done
    say "v$VER cluster: rev $(rev_of "$exp/get.json")"
}

# ---------------------------------------------------------------------------
# Scenario C: killed (SIGKILL while the backend has uncommitted writes)
# ---------------------------------------------------------------------------
gen_killed() {
    SCENARIO=killed
    CUR_LOGS=()
    local dd="$VWORK/killed" exp="$VOUT/killed.expect"
    mkdir -p "$exp"
    alloc_port; local cport=$PORT
    alloc_port; local pport=$PORT
    # A 60 s batch interval and a huge batch limit: the bbolt backend only commits
    # when something forces it, so the WAL holds writes that the db file lacks.
    start_member killed "$dd" fixture-killed "$cport" "$pport" "killed=http://127.0.0.1:$pport" \
        --backend-batch-interval=60s --backend-batch-limit=100000
    EP="127.0.0.1:$cport"
    wait_healthy "$EP" killed

    local i
    for ((i = 0; i < 10; i++)); do
        c put "$(printf '/killed/k%02d' "$i")" "$(printf 'v%02d' "$i")" >/dev/null
    done
    # `snapshot save` forces a backend commit: the db gets the first 10 puts.
    c snapshot save "$WORK/killed-mid.db" >"$WORK/snapshot-save.out"
    local mid_rev
    mid_rev="$(snapshot_status "$WORK/killed-mid.db" | grep -o '"revision":[0-9]*' | cut -d: -f2)"
    for ((i = 10; i < 20; i++)); do
        c put "$(printf '/killed/k%02d' "$i")" "$(printf 'v%02d' "$i")" >/dev/null
    done
    c del /killed/k03 >/dev/null
    printf '%s\n' 'value("/killed/k00") = "v00"' '' 'put /killed/txn yes' 'del /killed/k04' '' \
        'put /killed/txn no' '' | c txn >/dev/null

    c get "" --prefix -w json >"$exp/get.json"
    c endpoint status -w json >"$exp/endpoint-status.json"
    stop_member killed KILL

    archive "$VOUT/killed.datadir.tar.gz" "$VWORK" killed
    snapshot_status "$dd/member/snap/db" >"$exp/db-status.json"
    local ack_rev db_rev
    ack_rev="$(rev_of "$exp/get.json")"
    db_rev="$(grep -o '"revision":[0-9]*' "$exp/db-status.json" | cut -d: -f2)"
    {
        echo "etcd $VER, started with --backend-batch-interval=60s --backend-batch-limit=100000"
        echo "acknowledged revision (get.json header, before SIGKILL): $ack_rev"
        echo "db revision after SIGKILL (db-status.json): $db_rev"
        echo "forced backend commit (etcdctl snapshot save) after the first 10 puts, at revision: $mid_rev"
        echo "writes after that commit live only in the WAL: 10 puts, 1 delete, 1 txn (put + delete)"
    } >"$exp/notes.txt"
    [ "$db_rev" -lt "$ack_rev" ] ||
        die "killed: db revision $db_rev is not behind acknowledged revision $ack_rev (backend committed anyway?)"
    say "v$VER killed: acknowledged rev $ack_rev, db rev after SIGKILL $db_rev"
}

# ---------------------------------------------------------------------------
# Scenario D: snapcount (raft snapshots + WAL with 2+ segments)
# ---------------------------------------------------------------------------
gen_snapcount() {
    SCENARIO=snapcount
    CUR_LOGS=()
    local dd="$VWORK/snapcount" exp="$VOUT/snapcount.expect"
    mkdir -p "$exp"
    alloc_port; local cport=$PORT
    alloc_port; local pport=$PORT
    start_member snapcount "$dd" fixture-snapcount "$cport" "$pport" "snapcount=http://127.0.0.1:$pport" \
        --snapshot-count=50
    EP="127.0.0.1:$cport"
    wait_healthy "$EP" snapcount

    local i
    for ((i = 0; i < 300; i++)); do
        c put "$(printf '/snap/k%03d' "$i")" "$(printf 'v%03d' "$i")" >/dev/null
    done
    # WAL segments are 64,000,000 bytes: 48 puts of 1,500,000 bytes (below the
    # default --max-request-bytes of 1.5 MiB) roll the WAL over. Each value is one
    # repeated character so the tarball stays small.
    local chars=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv
    for ((i = 0; i < 48; i++)); do
        head -c 1500000 /dev/zero | tr '\0' "${chars:i:1}" | c put /snap/big >/dev/null
    done
    c get /snap/big --keys-only -w json >"$WORK/snap-head.json"
    local head_rev
    head_rev="$(rev_of "$WORK/snap-head.json")"
    c compaction --physical "$head_rev" >/dev/null
    c defrag >/dev/null

    c get /snap/k --prefix -w json >"$exp/get.json"
    c get /snap/big --keys-only -w json >"$exp/big.json"
    c endpoint status -w json >"$exp/endpoint-status.json"
    stop_member snapcount TERM

    (cd "$dd" && find . -type f -printf '%P %s\n' | sort) >"$exp/files.txt"
    archive "$VOUT/snapcount.datadir.tar.gz" "$VWORK" snapcount
    snapshot_status "$dd/member/snap/db" >"$exp/db-status.json"

    local nsnap nwal
    nsnap="$(grep -c '^member/snap/.*\.snap ' "$exp/files.txt" || true)"
    nwal="$(grep -c '^member/wal/.*\.wal ' "$exp/files.txt" || true)"
    [ "$nsnap" -ge 1 ] || die "snapcount: no member/snap/*.snap file was written"
    [ "$nwal" -ge 2 ] || die "snapcount: WAL did not roll over (only $nwal segment(s))"
    say "v$VER snapcount: rev $head_rev, $nsnap .snap file(s), $nwal WAL segment(s), tarball $(stat -c %s "$VOUT/snapcount.datadir.tar.gz") bytes"
}

# ---------------------------------------------------------------------------
# Per version
# ---------------------------------------------------------------------------
gen_version() {
    VER=$1
    local port_base
    case "$VER" in
        3.4.23)
            ETCD="$ETCD34_BIN/etcd"; ETCDCTL="$ETCD34_BIN/etcdctl"; ETCDUTL=""
            CTL_ENV=(ETCDCTL_API=3); port_base=23000 ;;
        3.5.1)
            ETCD="$ETCD35_BIN/etcd"; ETCDCTL="$ETCD35_BIN/etcdctl"; ETCDUTL="$ETCD35_BIN/etcdutl"
            CTL_ENV=(); port_base=24000 ;;
        *) die "unsupported version '$VER' (supported: 3.4.23 3.5.1)" ;;
    esac
    VWORK="$WORK/v$VER"
    VOUT="$WORK/out/v$VER"
    mkdir -p "$VWORK" "$VOUT"

    local t0=$SECONDS
    {
        echo "\$ etcd --version"
        "$ETCD" --version
        echo "\$ etcdctl version"
        env "${CTL_ENV[@]}" "$ETCDCTL" version
        if [ -n "$ETCDUTL" ]; then
            echo "\$ etcdutl version"
            "$ETCDUTL" version
        fi
    } >"$VOUT/versions.txt"

    NEXT_PORT=$port_base;       gen_single
    NEXT_PORT=$((port_base + 100)); gen_cluster
    NEXT_PORT=$((port_base + 200)); gen_killed
    NEXT_PORT=$((port_base + 300)); gen_snapcount

    mkdir -p "$OUTDIR"
    rm -rf "${OUTDIR:?}/v$VER"
    mv "$VOUT" "$OUTDIR/v$VER"
    rm -rf "$VWORK"
    say "v$VER done in $((SECONDS - t0)) s -> $OUTDIR/v$VER"
}

for v in $VERSIONS; do
    gen_version "$v"
done
say "all done in $(($(date +%s) - T_START)) s; $(du -sh "$OUTDIR" | cut -f1) in $OUTDIR"
