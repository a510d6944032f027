#!/usr/bin/python3
"""pybench: the Python client (tools/python/quiver) against qvctl on the same data in the
same run, through one quiver server it starts: insert rows/s (numpy columns, 1000-row
requests, 4 in flight: what `qvctl import` does) and search q/s at nq=1 and nq=100 (one
request at a time, as `qvctl search --nq-per-request`). Prints a table of medians; the
goal is Python >= 0.8x qvctl.

    /usr/bin/python3 tools/pybench.py [--rows 100000] [--dim 128] [--queries 2000]
                                      [--runs 3] [--bin-dir build] [--index HNSW|none]

Random vectors (seeded); the searched collection gets an HNSW index (M=16,
efConstruction=100, ef=64) so that the server's share of a query is small and the
clients' overhead shows."""
import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "python"))
sys.path.insert(0, os.path.join(HERE, "python", "tests"))
import numpy as np  # noqa: E402
from quiver import QuiverClient  # noqa: E402
import qv_server  # noqa: E402


def write_fvecs(path, arr):
    dim = arr.shape[1]
    rows = np.empty((arr.shape[0], dim + 1), dtype="<f4")
    rows[:, 0] = np.frombuffer(struct.pack("<i", dim), dtype="<f4")[0]
    rows[:, 1:] = arr
    rows.tofile(path)


def qvctl(bin_dir, endpoint, *args):
    p = subprocess.run([os.path.join(bin_dir, "qvctl"), "--server", endpoint, "--timeout",
                        "600", "--output", "json"] + [str(a) for a in args],
                       capture_output=True, text=True)
    if p.returncode:
        sys.exit("pybench: qvctl %s failed: %s%s" % (" ".join(map(str, args)), p.stdout, p.stderr))
    return json.loads(p.stdout)


def schema(dim):
    return [{"name": "id", "type": "int64", "primary": True},
            {"name": "vector", "type": "float_vector", "dim": dim, "metric": "L2"}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin-dir", default=os.environ.get("QV_BIN_DIR") or
                    os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--index", default="HNSW", choices=["HNSW", "none"])
    args = ap.parse_args()
    qv_server.BIN_DIR = args.bin_dir

    rng = np.random.default_rng(42)
    base = rng.random((args.rows, args.dim), dtype=np.float32)
    queries = rng.random((args.queries, args.dim), dtype=np.float32)
    tmp = tempfile.mkdtemp(prefix="pybench.")
    base_path, query_path = os.path.join(tmp, "base.fvecs"), os.path.join(tmp, "query.fvecs")
    write_fvecs(base_path, base)
    write_fvecs(query_path, queries)

    server = qv_server.Server().start()
    ep = server.endpoint
    client = QuiverClient(uri=ep, timeout=600, window=4)
    res = {k: ([], []) for k in ("insert", "nq1", "nq100")}    # (qvctl, python)
    try:
        for run in range(args.runs):
            for who in ("qvctl", "python"):
                name = "bench_%s_%d" % (who, run)
                client.create_collection(name, schema=schema(args.dim))
                if who == "qvctl":
                    out = qvctl(args.bin_dir, ep, "import", name, base_path, "--batch", 1000,
                                "--window", 4)
                    res["insert"][0].append(out["rows_per_s"])
                else:
                    t0 = time.perf_counter()
                    r = client.insert(name, {"id": np.arange(args.rows), "vector": base},
                                      batch_size=1000)
                    secs = time.perf_counter() - t0
                    assert r["insert_count"] == args.rows
                    res["insert"][1].append(args.rows / secs)
                if run > 0:
                    client.drop_collection(name)
        # search: one collection, flushed and indexed, queried by both clients in turns
        name = "bench_qvctl_0"
        client.drop_collection("bench_python_0")
        client.flush(name)
        if args.index == "HNSW":
            qvctl(args.bin_dir, ep, "index", name, "--type", "HNSW", "--M", 16,
                  "--ef-construction", 100)
        params = {"params": {"ef": 64}} if args.index == "HNSW" else None
        ef = ["--ef", 64] if args.index == "HNSW" else []
        for run in range(args.runs):
            for nq, key in ((1, "nq1"), (100, "nq100")):
                out = qvctl(args.bin_dir, ep, "search", name, query_path, "--k", 10,
                            "--nq-per-request", nq, "--print", 0, *ef)
                res[key][0].append(out["qps"])
                t0 = time.perf_counter()
                for start in range(0, args.queries, nq):
                    hits = client.search(name, queries[start:start + nq], limit=10,
                                         search_params=params)
                    assert len(hits) == min(nq, args.queries - start)
                res[key][1].append(args.queries / (time.perf_counter() - t0))
    finally:
        client.close()
        server.cleanup()
        for f in (base_path, query_path):
            os.unlink(f)
        os.rmdir(tmp)

    load = os.getloadavg()[0]
    print("pybench: %d rows x dim %d, %d queries, k=10, %s, median of %d runs, load %.1f"
          % (args.rows, args.dim, args.queries,
             "HNSW M=16 efC=100 ef=64" if args.index == "HNSW" else "exact search",
             args.runs, load))
    print("%-44s %10s %10s %8s %5s" % ("measure", "qvctl", "python", "py/qvctl", "goal"))
    rows = (("insert rows/s (1000/request, 4 in flight)", "insert"),
            ("search q/s, nq=1", "nq1"), ("search q/s, nq=100 per request", "nq100"))
    for label, key in rows:
        c, p = statistics.median(res[key][0]), statistics.median(res[key][1])
        print("%-44s %10.0f %10.0f %7.2fx %5s" % (label, c, p, p / c,
                                                   "ok" if p >= 0.8 * c else "MISS"))


if __name__ == "__main__":
    main()
