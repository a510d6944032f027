#!/usr/bin/python3
"""compactbench: compaction and garbage collection through a real `quiver serve`, and
resident memory per million vectors by index type; prints tables (issue 12's benchmark).

Part 1 (one server, --gc-grace-sec 5): inserts ROWS random DIM-d vectors, flushes, builds
an HNSW index, measures single-query search latency while idle, deletes 30% of the rows,
compacts (with the server's default write throttle unless --compaction-mb-per-sec is
given) while the same search load runs, and prints compaction rows/s and MB/s, search
p50/p99 idle and during compaction, and the bytes of segment and index objects in the
store before the delete, after the compaction, after garbage collection, against the
same live rows loaded afresh into a new collection with the same index (what the store
would hold had the deleted rows never been inserted) and against the live data's raw
size (ids, timestamps and vectors).

Part 0 (--deletes): deletes at scale. Inserts ROWS vectors without an index, flushes,
deletes every id in one request, then compacts; prints the delete's time and the
server's resident memory before and after it, and the compaction's time, memory and
store bytes after garbage collection.

Part 3 (--memory-only FLAT[,HNSW,...]): per index type, a fresh server: inserts ROWS
vectors, flushes, builds the index, prints VmRSS above an empty server's and the `stats`
memory by component (and the inserts' rows/s and server CPU per row), then restarts the
server on the same data and prints both again.

Part 2 (one fresh server per index type): inserts ROWS vectors, flushes, builds FLAT,
HNSW and IVF_SQ8 in turn and prints the server's resident memory (VmRSS from /proc)
above an empty server's, per million vectors, beside the raw vectors' size.

    /usr/bin/python3 tools/compactbench.py [--rows 1000000] [--dim 128] [--bin-dir build]
        [--queries 500] [--compaction-mb-per-sec N] [--skip-memory] [--deletes] [--memory-only FLAT,HNSW]
        [--server-env NAME=VALUE]"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
from quiver import QuiverClient  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def cpu_sec(pid):
    """User plus system CPU seconds of a process so far, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#  NAME=VALUE pairs (--server-env) added to the environment of every server started.
SERVER_ENV = {}


def store_bytes(data_dir, coll_id=None):
    """Bytes of segment and index objects, of one collection if coll_id is given."""
    total = 0
    top = os.path.join(data_dir, "segments")
    if coll_id is not None:
        top = os.path.join(top, str(coll_id))
    for d, _, files in os.walk(top):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Server:
    def __init__(self, bin_dir, *extra):
        self.dir = tempfile.mkdtemp(prefix="qv-compactbench-")
        self.bin_dir = bin_dir
        self.extra = extra
        self.start()

    def start(self):
        bin_dir, extra = self.bin_dir, self.extra
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        self.log = open(os.path.join(self.dir, "quiver.log"), "a")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "quiver"), "serve", "--data", os.path.join(self.dir, "data"),
             "--bind", self.endpoint] + list(extra), stdout=self.log, stderr=self.log,
            env=dict(os.environ, **SERVER_ENV))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = QuiverClient(uri=self.endpoint, timeout=2)
                c.get_server_version()
                c.close()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("quiver did not start; log in " + self.dir)

    def client(self):
        return QuiverClient(uri=self.endpoint, timeout=3600)

    def restart(self):
        """Stops the server and starts it again on the same data."""
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()
        self.start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def call(c, op, **fields):
    return c._call(op, 3600, **fields)


def fill(c, name, rows, dim, rng, index=None, pid=None):
    """Inserts, flushes and indexes; returns the inserts' wall seconds and, given the
    server's pid, the server's CPU seconds over them."""
    call(c, "create_collection", collection=name, dimension=dim, metric="L2")
    batch = 20000
    cpu0 = cpu_sec(pid) if pid else 0.0
    t0 = time.monotonic()
    for i in range(0, rows, batch):
        n = min(batch, rows - i)
        call(c, "insert", collection=name, columns={
            "id": list(range(i, i + n)),
            "vector": rng.random((n, dim), dtype=np.float32).tobytes()})
        if i and i % 200000 == 0:
            print("  inserted %d rows (%.0f s)" % (i, time.monotonic() - t0), file=sys.stderr)
    secs = time.monotonic() - t0
    cpu = cpu_sec(pid) - cpu0 if pid else 0.0
    call(c, "flush", collection=name)
    if index:
        call(c, "create_index", collection=name, field="vector", index_type=index[0],
             params=index[1])
        while True:
            d = call(c, "describe_index", collection=name, field="vector")
            if d["indexed_rows"] >= d["total_rows"]:
                break
            time.sleep(1)
    return secs, cpu


def fill_live(c, name, rows, dim, rng, keep, index):
    """The rows fill() would insert with an rng of the same seed, those whose id keep()
    accepts, under the same ids; flushed and indexed like fill()'s."""
    call(c, "create_collection", collection=name, dimension=dim, metric="L2")
    batch = 20000
    for i in range(0, rows, batch):
        n = min(batch, rows - i)
        vecs = rng.random((n, dim), dtype=np.float32)
        ids = [j for j in range(i, i + n) if keep(j)]
        if ids:
            call(c, "insert", collection=name, columns={
                "id": ids, "vector": vecs[[j - i for j in ids]].tobytes()})
    call(c, "flush", collection=name)
    call(c, "create_index", collection=name, field="vector", index_type=index[0], params=index[1])
    while True:
        d = call(c, "describe_index", collection=name, field="vector")
        if d["indexed_rows"] >= d["total_rows"]:
            break
        time.sleep(1)


def search_load(endpoint, name, dim, stop, out, seed):
    c = QuiverClient(uri=endpoint, timeout=600)
    rng = np.random.default_rng(seed)
    q = rng.random((1000, dim), dtype=np.float32)
    i = 0
    while not stop.is_set():
        t = time.perf_counter()
        call(c, "search", collection=name, vectors=q[i % 1000].tobytes(), dim=dim, limit=10,
             params={"ef": 64})
        out.append((time.perf_counter() - t) * 1e3)
        i += 1
    c.close()


def part1(args):
    extra = ["--gc-grace-sec", "5", "--auto-compaction-ratio", "0"]
    if args.compaction_mb_per_sec is not None:
        extra += ["--compaction-mb-per-sec", str(args.compaction_mb_per_sec)]
    s = Server(args.bin_dir, *extra)
    rng = np.random.default_rng(1)
    try:
        c = s.client()
        t0 = time.monotonic()
        fill(c, "bench", args.rows, args.dim, rng, ("HNSW", {"M": 16, "efConstruction": 100}))
        print("loaded %d rows with HNSW in %.0f s" % (args.rows, time.monotonic() - t0),
              file=sys.stderr)
        data = os.path.join(s.dir, "data")
        bytes_loaded = store_bytes(data)
        # Idle latency
        idle, stop = [], threading.Event()
        t = threading.Thread(target=search_load, args=(s.endpoint, "bench", args.dim, stop, idle, 2))
        t.start()
        while len(idle) < args.queries:
            time.sleep(0.05)
        stop.set()
        t.join()
        # Delete 30%
        gone = [i for i in range(args.rows) if i % 10 < 3]
        for i in range(0, len(gone), 100000):
            call(c, "delete", collection="bench", ids=gone[i:i + 100000])
        live = args.rows - len(gone)
        segs_before = call(c, "stats", collection="bench")["segments"]
        # Compaction under the same load
        busy, stop = [], threading.Event()
        t = threading.Thread(target=search_load, args=(s.endpoint, "bench", args.dim, stop, busy, 3))
        t.start()
        t0 = time.monotonic()
        cid = call(c, "compact", collection="bench")["compaction_id"]
        while True:
            st = call(c, "get_compaction_state", collection="bench", compaction_id=cid)
            if st["state"] != "executing":
                break
            time.sleep(0.2)
        secs = time.monotonic() - t0
        stop.set()
        t.join()
        assert st["state"] == "completed", st
        bytes_compacted = store_bytes(data)
        # GC: roll the manifests on (a flush elsewhere) until the old objects are gone
        call(c, "create_collection", collection="roll", dimension=4)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            call(c, "insert", collection="roll", rows=[{"id": 1, "vector": [0.0] * 4}])
            call(c, "flush", collection="roll")
            time.sleep(2)
            if store_bytes(data) < bytes_compacted * 0.9 or time.monotonic() - t0 > 30:
                time.sleep(3)
                break
        bytes_gc = store_bytes(data)
        bench_id = call(c, "describe_collection", collection="bench")["collection_id"]
        bytes_gc_bench = store_bytes(data, bench_id)
        # The same live rows loaded afresh (same vectors, ids, index): what the store
        # would hold had the deleted rows never been inserted
        fill_live(c, "fresh", args.rows, args.dim, np.random.default_rng(1),
                  lambda i: i % 10 >= 3, ("HNSW", {"M": 16, "efConstruction": 100}))
        fresh_id = call(c, "describe_collection", collection="fresh")["collection_id"]
        bytes_fresh = store_bytes(data, fresh_id)
        merged_rows = args.rows       # every segment held deleted rows
        raw_live = live * (args.dim * 4 + 16)
        print()
        print("## Compaction, %d x %d, HNSW (M=16, efC=100), 30%% deleted" % (args.rows, args.dim))
        print()
        print("| figure | value |")
        print("|---|---|")
        print("| segments before / after | %d / %d |" % (segs_before, call(c, "stats", collection="bench")["segments"]))
        print("| rows dropped | %d |" % st["rows_dropped"])
        print("| compaction time (merge, write, HNSW build of the live rows) | %.1f s |" % secs)
        print("| rows/s (rows merged) | %.0f |" % (merged_rows / secs))
        print("| MB/s (vector bytes merged) | %.1f |" % (merged_rows * args.dim * 4 / 1e6 / secs))
        print("| search nq=1 p50 / p99 idle (ms) | %.2f / %.2f (%d queries) |" % (
            statistics.median(idle), pct(idle, 99), len(idle)))
        print("| search nq=1 p50 / p99 during compaction (ms) | %.2f / %.2f (%d queries) |" % (
            statistics.median(busy), pct(busy, 99), len(busy)))
        print("| p99 during / idle | %.2fx |" % (pct(busy, 99) / pct(idle, 99)))
        print("| store bytes loaded (segments + indexes) | %.1f MB |" % (bytes_loaded / 1e6))
        print("| ... after compaction, before GC | %.1f MB |" % (bytes_compacted / 1e6))
        print("| ... after GC | %.1f MB (the collection's own: %.1f MB) |" % (
            bytes_gc / 1e6, bytes_gc_bench / 1e6))
        print("| the live rows loaded afresh, same index (segments + indexes) | %.1f MB |"
              % (bytes_fresh / 1e6))
        print("| after GC / afresh | %.2fx |" % (bytes_gc_bench / bytes_fresh))
        print("| live data raw (ids, ts, vectors) | %.1f MB |" % (raw_live / 1e6))
        print("| after GC / raw | %.2fx |" % (bytes_gc_bench / raw_live))
        c.close()
    finally:
        s.stop()


def part0(args):
    s = Server(args.bin_dir, "--gc-grace-sec", "2", "--auto-compaction-ratio", "0")
    rng = np.random.default_rng(9)
    try:
        c = s.client()
        fill(c, "del", args.rows, args.dim, rng)
        data = os.path.join(s.dir, "data")
        time.sleep(2)
        before = rss_mb(s.proc.pid)
        bytes_before = store_bytes(data)
        t0 = time.monotonic()
        r = call(c, "delete", collection="del", ids=list(range(args.rows)))
        secs = time.monotonic() - t0
        time.sleep(2)
        after = rss_mb(s.proc.pid)
        t0 = time.monotonic()
        cid = call(c, "compact", collection="del")["compaction_id"]
        while call(c, "get_compaction_state", collection="del", compaction_id=cid)["state"] == "executing":
            time.sleep(0.1)
        csecs = time.monotonic() - t0
        call(c, "create_collection", collection="roll", dimension=4)
        t0 = time.monotonic()
        while store_bytes(data) > bytes_before * 0.1 and time.monotonic() - t0 < 60:
            call(c, "insert", collection="roll", rows=[{"id": 1, "vector": [0.0] * 4}])
            call(c, "flush", collection="roll")
            time.sleep(1)
        time.sleep(2)
        compacted = rss_mb(s.proc.pid)
        print()
        print("## Deletes at scale: %d ids in one delete request, %d x %d, no index"
              % (args.rows, args.rows, args.dim))
        print()
        print("| figure | value |")
        print("|---|---|")
        print("| delete of %d ids (one request, acknowledged durable) | %.2f s, %d deleted |"
              % (args.rows, secs, r.get("deleted", -1)))
        print("| resident memory before / after the delete | %.0f / %.0f MB |" % (before, after))
        print("| compaction (every row dropped) | %.2f s |" % csecs)
        print("| resident memory after compaction and GC | %.0f MB |" % compacted)
        print("| segment objects before / after GC | %.1f / %.1f MB |"
              % (bytes_before / 1e6, store_bytes(data) / 1e6))
        c.close()
    finally:
        s.stop()


def part2(args):
    base = Server(args.bin_dir)
    time.sleep(1)
    empty = rss_mb(base.proc.pid)
    base.stop()
    rows = []
    for name, params in (("FLAT", {}), ("HNSW", {"M": 16, "efConstruction": 100}),
                         ("IVF_SQ8", {"nlist": 1024})):
        s = Server(args.bin_dir, "--auto-compaction-ratio", "0")
        try:
            c = s.client()
            fill(c, "m", args.rows, args.dim, np.random.default_rng(5), (name, params))
            time.sleep(2)
            mb = rss_mb(s.proc.pid) - empty
            rows.append((name, mb / (args.rows / 1e6)))
            c.close()
        finally:
            s.stop()
    raw = args.dim * 4 * 1e6 / 1e6
    print()
    print("## Resident memory per million %d-d vectors (VmRSS above an empty server, %.0f MB)"
          % (args.dim, empty))
    print()
    print("| index | MB per million rows | raw vectors | above raw vectors |")
    print("|---|---|---|---|")
    for name, mb in rows:
        print("| %s | %.0f | %.0f | %.0f |" % (name, mb, raw, mb - raw))


def memory_mb(c):
    """The `stats` reply's memory by component, in MB."""
    return {k: v / 1e6 for k, v in c.stats()["memory"].items()}


def part3(args):
    base = Server(args.bin_dir)
    time.sleep(1)
    empty = rss_mb(base.proc.pid)
    base.stop()
    per = args.rows / 1e6
    raw = args.dim * 4
    print()
    print("## Resident memory per million %d-d vectors, after the inserts and after a restart "
          "(VmRSS above an empty server, %.1f MB; `stats` memory in MB, for %d rows)"
          % (args.dim, empty, args.rows))
    print()
    print("| index | when | VmRSS MB per million | above raw vectors (%d) | flushed_segments "
          "| growing_segments | vector_indexes | primary_key_index | insert rows/s "
          "| server CPU us per row |" % raw)
    print("|---|---|---|---|---|---|---|---|---|---|")

    def row(name, when, mb, m, ins=None):
        print("| %s | %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %s | %s |"
              % (name, when, mb, mb - raw, m.get("flushed_segments", 0),
                 m.get("growing_segments", 0), m.get("vector_indexes", 0),
                 m.get("primary_key_index", 0),
                 "%.0f" % (args.rows / ins[0]) if ins else "",
                 "%.2f" % (ins[1] * 1e6 / args.rows) if ins else ""), flush=True)

    for name in args.memory_only.split(","):
        params = {"HNSW": {"M": 16, "efConstruction": 100}, "IVF_SQ8": {"nlist": 1024}}.get(name, {})
        s = Server(args.bin_dir, "--auto-compaction-ratio", "0")
        try:
            c = s.client()
            ins = fill(c, "m", args.rows, args.dim, np.random.default_rng(5), (name, params),
                       s.proc.pid)
            time.sleep(2)
            row(name, "after the inserts", (rss_mb(s.proc.pid) - empty) / per, memory_mb(c), ins)
            c.close()
            s.restart()
            c = s.client()
            t0 = time.monotonic()
            while c.stats()["rows"] < args.rows and time.monotonic() - t0 < 600:
                time.sleep(0.5)
            if name != "FLAT":
                while True:
                    d = call(c, "describe_index", collection="m", field="vector")
                    if d["indexed_rows"] >= d["total_rows"]:
                        break
                    time.sleep(1)
            time.sleep(2)
            row(name, "after a restart", (rss_mb(s.proc.pid) - empty) / per, memory_mb(c))
            c.close()
        finally:
            s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--compaction-mb-per-sec", type=float, default=None)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--server-env", metavar="NAME=VALUE", action="append", default=[],
                    help="add to the servers' environment (repeatable), e.g. "
                         "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304")
    ap.add_argument("--deletes", action="store_true", help="only the deletes-at-scale part")
    ap.add_argument("--memory-only", metavar="INDEXES",
                    help="only resident memory after the inserts and after a restart, for "
                         "these index types (comma-separated, e.g. FLAT or FLAT,HNSW)")
    args = ap.parse_args()
    for pair in args.server_env:
        name, _, value = pair.partition("=")
        SERVER_ENV[name] = value
    print("compactbench: %d x %d, %s" % (args.rows, args.dim, time.strftime("%Y-%m-%d %H:%M")))
    if args.deletes:
        part0(args)
        return
    if args.memory_only:
        part3(args)
        return
    part1(args)
    if not args.skip_memory:
        part2(args)


if __name__ == "__main__":
    main()
