#!/usr/bin/env python3
"""Put the objects of `cargo bench --bench k8s_objects` into a running etcd.

Reads JSON lines {"k": <key base64>, "v": <value base64>} from stdin and
writes them with txns of up to 128 puts (bodies under 1.2 MB) over several
keep-alive connections to etcd's JSON gateway (POST /v3/kv/txn). Python 3
standard library only. Prints a JSON summary: puts, txns, value bytes,
last revision.

    cargo bench --bench k8s_objects -- 600000 | python3 benches/load_k8s.py --endpoint 127.0.0.1:PORT
"""

import argparse
import http.client
import json
import queue
import sys
import threading
import time

MAX_TXN_OPS = 128
MAX_BODY = 1_200_000


class Gateway:
    def __init__(self, host, port):
        self.host, self.port, self.conn = host, port, None

    def post(self, path, body, retries=5):
        delay = 0.5
        for attempt in range(retries + 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
                self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise RuntimeError("POST %s: HTTP %d: %s" % (path, resp.status, data[:300]))
                return json.loads(data)
            except (OSError, http.client.HTTPException) as e:
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                if attempt == retries:
                    raise RuntimeError("POST %s failed: %s" % (path, e))
                time.sleep(delay)
                delay *= 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="HOST:PORT of etcd's client URL (plain http, loopback)")
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    host, port = a.endpoint.rsplit(":", 1)
    q = queue.Queue(maxsize=a.threads * 3)
    state = {"txns": 0, "rev": 0, "error": None}
    lock = threading.Lock()

    def worker():
        gw = Gateway(host, int(port))
        while True:
            body = q.get()
            try:
                if body is None:
                    return
                if state["error"] is None:
                    r = gw.post("/v3/kv/txn", body)
                    with lock:
                        state["txns"] += 1
                        state["rev"] = max(state["rev"], int(r["header"]["revision"]))
            except Exception as e:  # noqa: BLE001 - reported below
                state["error"] = e
            finally:
                q.task_done()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.threads)]
    for t in threads:
        t.start()
    puts = vbytes = 0
    ops, size = [], 0
    start = time.time()

    def flush():
        nonlocal ops, size
        if ops:
            q.put('{"success":[' + ",".join(ops) + "]}")
            ops, size = [], 0
        if state["error"] is not None:
            raise SystemExit("load_k8s: %s" % state["error"])

    for line in sys.stdin:
        d = json.loads(line)
        op = '{"request_put":{"key":"%s","value":"%s"}}' % (d["k"], d["v"])
        if ops and (len(ops) >= MAX_TXN_OPS or size + len(op) > MAX_BODY):
            flush()
        ops.append(op)
        size += len(op)
        puts += 1
        vbytes += len(d["v"]) * 3 // 4
        if puts % 50000 == 0:
            print("load_k8s: %d objects, %.0f MB of values, %.0f s" % (puts, vbytes / 1e6, time.time() - start), file=sys.stderr)
    flush()
    q.join()
    for _ in threads:
        q.put(None)
    for t in threads:
        t.join()
    if state["error"] is not None:
        raise SystemExit("load_k8s: %s" % state["error"])
    print(json.dumps({"puts": puts, "txns": state["txns"], "value_bytes": vbytes, "revision": state["rev"],
                      "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
