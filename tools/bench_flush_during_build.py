#!/usr/bin/python3
"""Flush latency of a small collection while a large HNSW build of another runs.

Usage: tools/bench_flush_during_build.py [--rows N] [--dim D] NAME=QUIVER_BINARY ...

For each binary (e.g. main=/tmp/main/build/quiver meta=build/quiver), in one run:
starts `quiver serve` on a fresh data directory and a free port, creates 'big' with
an HNSW index (M 16, efConstruction 200), inserts N random rows (default 30000) and
flushes it (its index build starts), then inserts 1,000 rows into 'small' and times
its flush; prints one table row per binary: both flush times, the big index's state
when small's flush replied, and when the build finished. Needs /usr/bin/python3 with
numpy, zmq and msgpack. The machine's load shows in every figure: compare rows of one
run only.
"""
import os, shutil, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
import numpy as np
from quiver.client import QuiverClient


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, rows, dim):
    data = tempfile.mkdtemp(prefix="qv-bench-fdb-")
    port = free_port()
    log = open(data + ".log", "w")
    server = subprocess.Popen([binary, "serve", "--data", data, "--bind", f"tcp://127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        c = QuiverClient(f"tcp://127.0.0.1:{port}")
        for _ in range(300):
            try:
                c._call("ping")
                break
            except Exception:
                time.sleep(0.1)
        rng = np.random.default_rng(1)
        c.create_collection("big", dimension=dim)
        c._call("create_index", collection="big", field="vector", index_type="HNSW",
                params={"M": 16, "efConstruction": 200})
        big = rng.random((rows, dim), dtype=np.float32)
        for s in range(0, rows, 5000):
            n = min(5000, rows - s)
            c.insert("big", {"id": np.arange(s, s + n), "vector": big[s:s + n]})
        t0 = time.time()
        c.flush("big", timeout=3600)
        t_big = time.time() - t0
        c.create_collection("small", dimension=dim)
        c.insert("small", {"id": np.arange(1000), "vector": rng.random((1000, dim), dtype=np.float32)})
        t0 = time.time()
        c.flush("small", timeout=3600)
        t_small = time.time() - t0
        state = c._call("describe_index", collection="big", field="vector")["state"]
        while c._call("describe_index", collection="big", field="vector")["state"] != "finished":
            time.sleep(0.2)
        return t_big, t_small, state, time.time() - t0
    finally:
        server.kill()
        server.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
        os.unlink(data + ".log")


def main(argv):
    if not argv or "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0 if argv else 2
    rows, dim, binaries = 30000, 128, []
    it = iter(argv)
    for a in it:
        if a == "--rows":
            rows = int(next(it))
        elif a == "--dim":
            dim = int(next(it))
        elif "=" in a:
            binaries.append(a.split("=", 1))
        else:
            print(f"unknown argument {a!r}; see --help", file=sys.stderr)
            return 2
    print(f"{rows} x {dim} random rows in 'big' (HNSW M 16, efConstruction 200); 1,000 in 'small'; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| binary | flush big (s) | flush small during the build (s) | big's index when small's flush replied | build finished after small's flush began (s) |")
    print("|---|---|---|---|---|")
    for name, binary in binaries:
        t_big, t_small, state, t_build = run(binary, rows, dim)
        print(f"| {name} | {t_big:.2f} | {t_small:.2f} | {state} | {t_build:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
