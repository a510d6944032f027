#!/usr/bin/python3
"""splitmem: resident memory of each process of the split topology beside an embedded
server holding the same data, in one run. Starts a nats-server (JetStream) and, on their
own data directories, an embedded server and a writer without the searcher role
(`--roles proxy,segment-manager,meta,flusher`) with one searcher process; inserts the same
random rows through the Python client into both, flushes, builds the same HNSW index,
waits until every process reports it built (the searcher: loaded), and prints each
process's VmRSS and VmHWM (from /proc). Then restarts the writer and prints it again:
a restarted writer keeps the manifest's vector indexes as records without loading them.

    /usr/bin/python3 tools/splitmem.py [--rows 200000] [--dim 128] [--bin-dir build]

nats-server must be on PATH (Debian's nats-server)."""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
from quiver import MilvusClient  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(proc):
    """VmRSS and VmHWM of a running process, in MB."""
    got = {}
    with open("/proc/%d/status" % proc.pid) as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                got[key] = int(line.split()[1]) / 1024.0
    return got["VmRSS"], got["VmHWM"]


class Run:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="qv-splitmem-")
        self.quiver = os.path.join(args.bin_dir, "quiver")
        self.procs = []
        self.log = open(os.path.join(self.tmp, "quiver.log"), "w")

    def start(self, *argv):
        p = subprocess.Popen([self.quiver, "serve"] + list(argv), stdout=self.log,
                             stderr=self.log)
        self.procs.append(p)
        return p

    def client(self, endpoint):
        deadline = time.monotonic() + 120
        while True:
            try:
                c = MilvusClient(endpoint, timeout=600)
                c.list_collections()
                return c
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            p.kill()
            p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_indexed(client, rows, what):
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        d = client.describe_index("c", "vector")
        if d.get("indexed_rows") == rows and d.get("state") == "finished":
            return
        time.sleep(0.2)
    raise SystemExit("splitmem: %s did not report %d rows indexed" % (what, rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    if not shutil.which("nats-server"):
        raise SystemExit("splitmem: nats-server is not on PATH (apt install nats-server)")
    run = Run(args)
    try:
        nport = free_port()
        nats = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(nport), "-js",
                                 "-sd", os.path.join(run.tmp, "js")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run.procs.append(nats)
        url = "nats://127.0.0.1:%d" % nport
        ep = {k: "tcp://127.0.0.1:%d" % free_port() for k in ("embedded", "writer", "searcher")}
        emb = run.start("--data", os.path.join(run.tmp, "e"), "--bind", ep["embedded"])
        writer_argv = ["--roles", "proxy,segment-manager,meta,flusher", "--nats", url,
                       "--data", os.path.join(run.tmp, "s"), "--bind", ep["writer"]]
        writer = run.start(*writer_argv)
        ce, cw = run.client(ep["embedded"]), run.client(ep["writer"])
        searcher = run.start("--roles", "searcher", "--nats", url, "--data",
                             os.path.join(run.tmp, "s"), "--bind", ep["searcher"])
        cs = run.client(ep["searcher"])
        rng = np.random.default_rng(1)
        vecs = rng.random((args.rows, args.dim), dtype=np.float32)
        for c in (ce, cw):
            c.create_collection("c", dimension=args.dim)
            for i in range(0, args.rows, 5000):
                j = min(args.rows, i + 5000)
                c.insert("c", [{"id": k, "vector": vecs[k]} for k in range(i, j)])
            c.flush("c")
            ip = c.prepare_index_params()
            ip.add_index(field_name="vector", index_type="HNSW",
                         params={"M": 16, "efConstruction": 100})
            c.create_index("c", ip)
        for c, what in ((ce, "the embedded server"), (cw, "the writer"),
                        (cs, "the searcher process")):
            wait_indexed(c, args.rows, what)
        time.sleep(2)               # the writer's manifest naming the index, durable
        rows = [("embedded server (every role)", emb),
                ("split: writer", writer), ("split: searcher process", searcher)]
        table = [(name, memory_mb(p)) for name, p in rows]
        released = cw.stats().get("indexes_released")
        cw.close()
        run.stop(writer)
        writer = run.start(*writer_argv)
        cw = run.client(ep["writer"])
        wait_indexed(cw, args.rows, "the restarted writer")
        table.append(("split: writer, restarted", memory_mb(writer)))
        print("%d x %d float32 rows (%.0f MB of vectors), flushed, HNSW M 16 efConstruction 100"
              % (args.rows, args.dim, args.rows * args.dim * 4 / 1048576.0))
        print("%-34s %10s %10s" % ("process", "VmRSS MB", "VmHWM MB"))
        for name, (rss, hwm) in table:
            print("%-34s %10.0f %10.0f" % (name, rss, hwm))
        print("(the writer's indexes_released before the restart: %s)" % released)
    finally:
        run.cleanup()


if __name__ == "__main__":
    main()
