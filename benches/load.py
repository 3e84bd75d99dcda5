#!/usr/bin/env python3
"""Fill a running etcd (v3.5) with Kubernetes-shaped data until its db reaches a size.

Used by benches/gen-big-snapshot.sh; Python 3 standard library only.

Talks to etcd's gRPC-gateway JSON API (POST /v3/kv/txn, /v3/maintenance/status,
/v3/lease/grant, /v3/kv/range) over several keep-alive HTTP connections, one per
worker thread. Keys and values are base64 in the JSON bodies.

Phases (sizes are etcd's own `dbSize`, polled while loading):

  1. cluster-scoped keys: /registry/namespaces/<ns>, /registry/minions/<node>,
     node leases, cluster roles, API services, priority classes;
  2. namespaced keys /registry/<resource>/<namespace>/<name> (pods, events,
     configmaps, secrets, deployments, replicasets, services/specs,
     services/endpoints, leases, serviceaccounts, endpointslices) until the db
     holds about --initial-fraction of the target;
  3. history: a hot set of --overwrite-fraction of the keys is overwritten twice,
     the revision at that point is the compaction revision handed back to the
     caller, then half of the hot set is overwritten a third time (so history
     stays above the compaction revision);
  4. --delete-fraction of the keys is deleted (tombstones above the compaction
     revision);
  5. more namespaced keys until dbSize >= --target-bytes.

Values are ~0.8 KB on average, 0.2-1.6 KB (a few configmaps/secrets are tens of KB, so the
file has overflow pages): a `k8s\\0` protobuf-envelope-like prefix naming the
type, followed by random bytes (incompressible). Events are attached to a few
long-lived etcd leases, as the API server does.

The caller runs the compaction (`etcdctl compaction --physical REV`); this script
prints a JSON summary (also written to --summary) with `compact_revision`.
"""

import argparse
import base64
import http.client
import json
import os
import queue
import random
import string
import sys
import threading
import time

MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
MAX_BODY = 1_200_000  # stay well under etcd's default --max-request-bytes (1.5 MiB)


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Gateway:
    """One keep-alive HTTP/1.1 connection to etcd's JSON gateway."""

    def __init__(self, host, port, timeout=300):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def post(self, path, obj, retries=5):
        body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj, separators=(",", ":"))
        delay = 0.5
        for attempt in range(retries + 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise RuntimeError("POST %s: HTTP %d: %s" % (path, resp.status, data[:500].decode("utf-8", "replace")))
                return json.loads(data)
            except (OSError, http.client.HTTPException) as e:
                # Connection-level trouble: reconnect and retry (a replayed txn of
                # puts only adds one more revision of the same keys).
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                if attempt == retries:
                    raise RuntimeError("POST %s failed after %d tries: %s" % (path, retries + 1, e))
                time.sleep(delay)
                delay *= 2

    def db_size(self):
        st = self.post("/v3/maintenance/status", {})
        return int(st.get("dbSize", 0)), int(st["header"]["revision"])

    def revision(self):
        r = self.post("/v3/kv/range", {"key": b64(b"/registry/namespaces/default"), "count_only": True})
        return int(r["header"]["revision"])


# ----------------------------------------------------------------------------
# Kubernetes-shaped key and value generation
# ----------------------------------------------------------------------------

WORDS = (
    "api auth billing cart catalog checkout search frontend backend gateway ledger mailer "
    "metrics orders payments profile queue ranking reports scheduler session shipping "
    "storage stream tracker users worker cache notifier indexer importer exporter"
).split()
ENVS = "prod staging dev qa canary perf sandbox".split()
ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"

# (resource path, weight, apiVersion, kind, min value len, max value len)
NAMESPACED = [
    ("pods", 26, b"v1", b"Pod", 600, 1600),
    ("events", 24, b"v1", b"Event", 350, 750),
    ("configmaps", 9, b"v1", b"ConfigMap", 300, 1100),
    ("secrets", 9, b"v1", b"Secret", 200, 900),
    ("replicasets", 8, b"apps/v1", b"ReplicaSet", 500, 1300),
    ("deployments", 5, b"apps/v1", b"Deployment", 600, 1500),
    ("services/specs", 4, b"v1", b"Service", 300, 700),
    ("services/endpoints", 4, b"v1", b"Endpoints", 300, 900),
    ("endpointslices", 3, b"discovery.k8s.io/v1", b"EndpointSlice", 300, 1000),
    ("serviceaccounts", 3, b"v1", b"ServiceAccount", 200, 400),
    ("leases", 2, b"coordination.k8s.io/v1", b"Lease", 250, 450),
]
TYPES = {r[0]: (r[2], r[3], r[4], r[5]) for r in NAMESPACED}
TYPES.update({
    "namespaces": (b"v1", b"Namespace", 250, 500),
    "minions": (b"v1", b"Node", 3000, 6000),
    "node-leases": (b"coordination.k8s.io/v1", b"Lease", 250, 400),
    "clusterroles": (b"rbac.authorization.k8s.io/v1", b"ClusterRole", 400, 1600),
    "clusterrolebindings": (b"rbac.authorization.k8s.io/v1", b"ClusterRoleBinding", 300, 600),
    "apiservices": (b"apiregistration.k8s.io/v1", b"APIService", 400, 900),
    "priorityclasses": (b"scheduling.k8s.io/v1", b"PriorityClass", 200, 300),
})
TYPE_NAMES = list(TYPES)
TYPE_INDEX = {n: i for i, n in enumerate(TYPE_NAMES)}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def make_value(type_idx, rng):
    """`k8s\\0` + a runtime.Unknown-like envelope (typeMeta, then raw bytes)."""
    api, kind, lo, hi = TYPES[TYPE_NAMES[type_idx]]
    n = rng.randint(lo, hi)
    if kind in (b"ConfigMap", b"Secret") and rng.random() < 0.01:
        n = rng.randint(4096, 32 * 1024)  # a few big objects -> overflow pages
    tm = b"\n" + varint(len(api)) + api + b"\x12" + varint(len(kind)) + kind
    head = b"k8s\x00\n" + varint(len(tm)) + tm + b"\x12" + varint(n)
    return head + os.urandom(n)


class KeyGen:
    def __init__(self, seed, namespaces, nodes):
        self.rng = random.Random(seed)
        rng = self.rng
        names = ["default", "kube-system", "kube-public", "kube-node-lease", "monitoring", "ingress-nginx"]
        seen = set(names)
        while len(names) < namespaces:
            n = "%s-%s-%s" % (rng.choice(WORDS), rng.choice(ENVS), "".join(rng.choices(ALNUM, k=3)))
            if n not in seen:
                seen.add(n)
                names.append(n)
        self.namespaces = names
        # A few big namespaces, a long tail of small ones.
        self.ns_cum = []
        total = 0.0
        for i in range(len(names)):
            total += 1.0 / (i + 3) ** 0.8
            self.ns_cum.append(total)
        self.nodes = ["node-%s-%s" % (rng.choice(("pool-a", "pool-b", "gpu", "infra")), "".join(rng.choices(ALNUM, k=5)))
                      for _ in range(nodes)]
        self.res_cum = []
        total = 0
        for r in NAMESPACED:
            total += r[1]
            self.res_cum.append(total)
        self.apps = {}

    def cluster_scoped(self):
        """Keys that a cluster has once: namespaces, nodes, RBAC, ..."""
        rng = self.rng
        out = []
        for ns in self.namespaces:
            out.append(("/registry/namespaces/" + ns, "namespaces"))
        for node in self.nodes:
            out.append(("/registry/minions/" + node, "minions"))
            out.append(("/registry/leases/kube-node-lease/" + node, "node-leases"))
        for i in range(300):
            out.append(("/registry/clusterroles/%s:%s-%d" % (rng.choice(("system", "edit", "view", "admin")), rng.choice(WORDS), i), "clusterroles"))
            out.append(("/registry/clusterrolebindings/%s-%s-%d" % (rng.choice(WORDS), rng.choice(WORDS), i), "clusterrolebindings"))
        for i, g in enumerate(("apps", "batch", "policy", "storage.k8s.io", "networking.k8s.io", "metrics.k8s.io",
                               "coordination.k8s.io", "discovery.k8s.io", "autoscaling", "rbac.authorization.k8s.io")):
            for v in ("v1", "v1beta1", "v2"):
                out.append(("/registry/apiregistration.k8s.io/apiservices/%s.%s" % (v, g), "apiservices"))
        for p in ("system-cluster-critical", "system-node-critical", "high", "low", "batch"):
            out.append(("/registry/priorityclasses/" + p, "priorityclasses"))
        return out

    def namespaced(self):
        rng = self.rng
        ns = rng.choices(self.namespaces, cum_weights=self.ns_cum)[0]
        res = rng.choices(NAMESPACED, cum_weights=self.res_cum)[0][0]
        apps = self.apps.get(ns)
        if apps is None:
            apps = self.apps[ns] = ["%s-%s" % (rng.choice(WORDS), rng.choice(WORDS)) for _ in range(rng.randint(3, 40))]
        app = rng.choice(apps)
        h10 = "".join(rng.choices(HEX, k=10))
        a5 = "".join(rng.choices(ALNUM, k=5))
        if res == "pods":
            name = "%s-%s-%s" % (app, h10, a5)
        elif res == "events":
            name = "%s-%s-%s.%s" % (app, h10, a5, "".join(rng.choices(HEX, k=16)))
        elif res == "replicasets":
            name = "%s-%s" % (app, h10)
        elif res == "configmaps":
            name = "%s-config-%s" % (app, a5)
        elif res == "secrets":
            name = "%s-token-%s" % (app, a5)
        elif res == "endpointslices":
            name = "%s-%s" % (app, a5)
        elif res == "leases":
            name = "%s-leader-%s" % (app, a5)
        else:  # deployments, services, serviceaccounts
            name = "%s-%s" % (app, a5)
        return ("/registry/%s/%s/%s" % (res, ns, name), res)


# ----------------------------------------------------------------------------
# Loader
# ----------------------------------------------------------------------------

class Loader:
    def __init__(self, host, port, threads, seed):
        self.host, self.port = host, port
        self.q = queue.Queue(maxsize=threads * 3)
        self.lock = threading.Lock()
        self.error = None
        self.puts = 0
        self.deletes = 0
        self.txns = 0
        self.value_bytes = 0
        self.max_rev = 0
        self.leases = []
        self.seed = seed
        self.threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _worker(self, idx):
        gw = Gateway(self.host, self.port)
        rng = random.Random(self.seed * 1000 + idx)
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                if self.error is not None:
                    continue
                kind, batch = item
                ops = []
                nbytes = 0
                if kind == "put":
                    for key, tidx in batch:
                        val = make_value(tidx, rng)
                        nbytes += len(val)
                        put = {"key": b64(key.encode()), "value": b64(val)}
                        if tidx == TYPE_INDEX["events"] and self.leases:
                            put["lease"] = rng.choice(self.leases)
                        ops.append({"request_put": put})
                else:
                    for key, _ in batch:
                        ops.append({"request_delete_range": {"key": b64(key.encode())}})
                resp = gw.post("/v3/kv/txn", {"success": ops})
                rev = int(resp["header"]["revision"])
                with self.lock:
                    self.txns += 1
                    if kind == "put":
                        self.puts += len(batch)
                        self.value_bytes += nbytes
                    else:
                        self.deletes += len(batch)
                    if rev > self.max_rev:
                        self.max_rev = rev
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                self.error = e
            finally:
                self.q.task_done()

    def submit(self, kind, batch):
        if self.error is not None:
            raise RuntimeError("loader worker failed: %s" % self.error)
        self.q.put((kind, batch))

    def drain(self):
        self.q.join()
        if self.error is not None:
            raise RuntimeError("loader worker failed: %s" % self.error)

    def close(self):
        for _ in self.threads:
            self.q.put(None)
        for t in self.threads:
            t.join()


def batches(items, max_ops=MAX_TXN_OPS):
    """Split (key, type) items into txns of <= max_ops ops and a bounded body size."""
    batch, est = [], 0
    for key, tname in items:
        tidx = TYPE_INDEX[tname] if isinstance(tname, str) else tname
        # worst case value length for this type, base64-inflated, plus JSON overhead
        hi = TYPES[TYPE_NAMES[tidx]][3]
        if TYPE_NAMES[tidx] in ("configmaps", "secrets"):
            hi = 32 * 1024 + 64
        cost = (len(key) + hi + 64) * 4 // 3 + 64
        if batch and (len(batch) >= max_ops or est + cost > MAX_BODY):
            yield batch
            batch, est = [], 0
        batch.append((key, tidx))
        est += cost
    if batch:
        yield batch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="HOST:PORT of etcd's client URL (plain http)")
    ap.add_argument("--target-bytes", type=int, required=True, help="stop when etcd's dbSize reaches this")
    ap.add_argument("--initial-fraction", type=float, default=0.72,
                    help="first load phase stops at this fraction of the target (default 0.72)")
    ap.add_argument("--overwrite-fraction", type=float, default=0.10)
    ap.add_argument("--delete-fraction", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--namespaces", type=int, default=250)
    ap.add_argument("--nodes", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20211115)
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    args = ap.parse_args()

    host, _, port = args.endpoint.rpartition(":")
    host = host or "127.0.0.1"
    port = int(port)
    t0 = time.time()
    gw = Gateway(host, port)
    gen = KeyGen(args.seed, args.namespaces, args.nodes)
    rng = random.Random(args.seed + 1)
    target = args.target_bytes

    last_print = [0.0]

    def log(msg, quiet=False):
        """Poll dbSize; print progress (throttled to every ~5 s when quiet)."""
        size, rev = gw.db_size()
        now = time.time()
        if quiet and now - last_print[0] < 5:
            return size
        last_print[0] = now
        print("load.py: [%6.1fs] %-34s dbSize=%7.1f MiB rev=%-9d puts=%d deletes=%d" % (
            time.time() - t0, msg, size / 2**20, rev, loader.puts, loader.deletes), file=sys.stderr, flush=True)
        return size

    # Long-lived leases for events (the API server attaches events to leases).
    leases = []
    for _ in range(8):
        r = gw.post("/v3/lease/grant", {"TTL": 30 * 24 * 3600})
        leases.append(r["ID"])

    loader = Loader(host, port, args.threads, args.seed)
    loader.leases = leases
    keys = []  # (key, type name) of every key created, in creation order

    def load_until(fraction, label):
        goal = int(target * fraction)
        n = 0
        while True:
            items = [gen.namespaced() for _ in range(MAX_TXN_OPS * 8)]
            keys.extend(items)
            for b in batches(items):
                loader.submit("put", b)
            n += 1
            if n % 2 == 0:
                # dbSize lags by what is queued (a few txns): only overshoots a little
                size = log(label, quiet=True)
                if size >= goal:
                    return size

    try:
        # 1. cluster-scoped objects
        items = gen.cluster_scoped()
        keys.extend(items)
        for b in batches(items):
            loader.submit("put", b)
        loader.drain()
        log("cluster-scoped keys loaded")

        # 2. bulk namespaced objects
        load_until(args.initial_fraction, "initial load")
        initial_keys = len(keys)
        log("initial load done (%d keys)" % initial_keys)

        # 3. history: overwrite a hot set 2x, remember the revision, then half of it once more
        hot = rng.sample(range(len(keys)), int(len(keys) * args.overwrite_fraction))
        for rnd in (1, 2):
            rng.shuffle(hot)
            for b in batches(keys[i] for i in hot):
                loader.submit("put", b)
            loader.drain()
            log("overwrite round %d (%d keys)" % (rnd, len(hot)))
        compact_rev = gw.revision()
        rng.shuffle(hot)
        third = hot[: len(hot) // 2]
        for b in batches(keys[i] for i in third):
            loader.submit("put", b)
        loader.drain()
        log("overwrite round 3 (%d keys)" % len(third))

        # 4. deletes
        dels = rng.sample(range(len(keys)), int(len(keys) * args.delete_fraction))
        for b in batches(keys[i] for i in dels):
            loader.submit("del", b)
        loader.drain()
        log("deleted %d keys" % len(dels))

        # 5. top up to the target size
        load_until(1.0, "top-up load")
        loader.drain()
        log("top-up done (%d keys)" % len(keys))
        time.sleep(0.3)
        size, rev = gw.db_size()
    finally:
        loader.close()

    summary = {
        "keys_created": len(keys),
        "initial_keys": initial_keys,
        "overwritten_keys": len(hot),
        "overwrites": 2 * len(hot) + len(third),
        "deleted_keys": len(dels),
        "puts": loader.puts,
        "deletes": loader.deletes,
        "txns": loader.txns,
        "value_bytes": loader.value_bytes,
        "compact_revision": compact_rev,
        "revision": rev,
        "db_size": size,
        "leases": len(leases),
        "seconds": round(time.time() - t0, 1),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
