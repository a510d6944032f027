"""Compaction and garbage collection against a real quiver: 100k rows, 30% deleted and
10% upserted, compacted while searches and gets run, with the same answers before,
during and after (exact search); the merged segment has its index at once; the old
objects are deleted after the grace period and the data shrinks; TTL expiry becomes
physical; kill -9 at random points of a compaction never loses or doubles a row;
dropped collections and partitions free their objects; qvctl compact; errors."""
import os
import random
import subprocess
import threading
import time
import unittest

import numpy as np

from qv_server import BIN_DIR, Server
from quiver import QuiverClient, QuiverException

DIM = 16
OPTS = ("--gc-grace-sec", "2", "--segment-mb", "2", "--auto-compaction-ratio", "0")


def call(c, op, **fields):
    return c._call(op, 120, **fields)


def wait_compaction(c, name, cid, limit_s=300):
    """Polls get_compaction_state until the compaction is final; returns the reply."""
    deadline = time.monotonic() + limit_s
    st = None
    while time.monotonic() < deadline:
        st = call(c, "get_compaction_state", collection=name, compaction_id=cid)
        if st["state"] != "executing":
            break
        time.sleep(0.1)
    assert st is not None and st["state"] != "executing", st
    return st


def segment_objects(server, coll_id=None):
    """(key, bytes) of every segment and index object in the server's data directory."""
    root = os.path.join(server.dir, "data", "segments")
    out = []
    for d, _, files in os.walk(root):
        if coll_id is not None and os.path.basename(d) != str(coll_id):
            continue
        for f in files:
            p = os.path.join(d, f)
            out.append((os.path.relpath(p, root), os.path.getsize(p)))
    return out


def vectors_bin(x):
    return np.ascontiguousarray(x, dtype=np.float32).tobytes()


class CompactTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(*OPTS).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.c = QuiverClient(uri=self.server.endpoint, timeout=120)

    def tearDown(self):
        self.c.close()

    def create(self, name, **extra):
        if self.c.has_collection(name):
            self.c.drop_collection(name)
        call(self.c, "create_collection", collection=name, dimension=DIM, metric="L2", **extra)
        return call(self.c, "describe_collection", collection=name)["collection_id"]

    def insert(self, name, ids, vecs, op="insert", partition=None):
        for i in range(0, len(ids), 5000):
            fields = dict(collection=name,
                          columns={"id": [int(x) for x in ids[i:i + 5000]],
                                   "vector": vectors_bin(vecs[i:i + 5000])})
            if partition:
                fields["partition"] = partition
            call(self.c, op, **fields)

    def count(self, name):
        return call(self.c, "query", collection=name, filter="",
                    output_fields=["count(*)"])["rows"][0]["count(*)"]

    def search(self, name, queries, limit=10):
        r = call(self.c, "search", collection=name, vectors=vectors_bin(queries), dim=DIM,
                 limit=limit)
        return [[(h["id"], h["distance"]) for h in hits] for hits in r["results"]]

    def get(self, name, ids):
        rows = call(self.c, "get", collection=name, ids=[int(x) for x in ids],
                    output_fields=["vector"])["rows"]
        return {r["id"]: np.frombuffer(r["vector"], dtype=np.float32)
                if isinstance(r["vector"], bytes) else np.array(r["vector"], dtype=np.float32)
                for r in rows}

    # ------------------------------------------------------------------ the big one
    def test_compact_100k(self):
        name = "big"
        coll_id = self.create(name)
        n = 100000
        rng = np.random.default_rng(7)
        base = rng.random((n, DIM), dtype=np.float32)
        ids = np.arange(n)
        self.insert(name, ids, base)
        call(self.c, "flush", collection=name)
        call(self.c, "create_index", collection=name, field="vector", index_type="FLAT")
        deleted = ids[ids % 10 < 3]                      # 30%
        for i in range(0, len(deleted), 10000):
            call(self.c, "delete", collection=name, ids=[int(x) for x in deleted[i:i + 10000]])
        upserted = ids[ids % 10 == 3]                    # 10%
        newvec = rng.random((len(upserted), DIM), dtype=np.float32)
        self.insert(name, upserted, newvec, op="upsert")
        call(self.c, "flush", collection=name)
        live = n - len(deleted)
        self.assertEqual(self.count(name), live)
        queries = rng.random((20, DIM), dtype=np.float32)
        before = self.search(name, queries)
        sample = rng.choice(n, 500, replace=False)
        got_before = self.get(name, sample)
        for i in sample:
            if i % 10 < 3:
                self.assertNotIn(int(i), got_before)
        # Every segment's index object written before the objects are measured
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            idx = call(self.c, "describe_index", collection=name, field="vector")
            if idx["indexed_rows"] == idx["total_rows"]:
                break
            time.sleep(0.2)
        self.assertEqual(idx["indexed_rows"], idx["total_rows"])
        objects_before = segment_objects(self.server, coll_id)
        bytes_before = sum(b for _, b in objects_before)
        segs_before = call(self.c, "stats", collection=name)["segments"]

        # Searches and gets running across the compaction must answer as before
        wrong, answered, stop = [], [0], threading.Event()

        def load():
            c2 = QuiverClient(uri=self.server.endpoint, timeout=120)
            try:
                while not stop.is_set():
                    r = call(c2, "search", collection=name, vectors=vectors_bin(queries[:5]),
                             dim=DIM, limit=10)
                    got = [[(h["id"], h["distance"]) for h in hits] for hits in r["results"]]
                    if got != before[:5]:
                        wrong.append(("search", got))
                    rows = call(c2, "get", collection=name, ids=[int(x) for x in sample[:50]])["rows"]
                    if sorted(r["id"] for r in rows) != sorted(int(i) for i in sample[:50] if i % 10 >= 3):
                        wrong.append(("get", rows))
                    answered[0] += 1
            finally:
                c2.close()

        t = threading.Thread(target=load)
        t.start()
        cid = call(self.c, "compact", collection=name)["compaction_id"]
        st = wait_compaction(self.c, name, cid)
        time.sleep(0.5)
        stop.set()
        t.join()
        self.assertEqual(st["state"], "completed", st)
        self.assertEqual(st["rows_dropped"], len(deleted) + len(upserted))
        self.assertGreaterEqual(len(st["merged_segments"]), 2)
        self.assertGreaterEqual(len(st["new_segments"]), 1)
        self.assertEqual(wrong[:1], [])
        self.assertGreater(answered[0], 0)

        # Same answers after, every row once, the index on every segment at once
        self.assertEqual(self.count(name), live)
        self.assertEqual(self.search(name, queries), before)
        got_after = self.get(name, sample)
        self.assertEqual(sorted(got_after), sorted(got_before))
        for k in got_before:
            np.testing.assert_array_equal(got_after[k], got_before[k])
        for i, u in enumerate(upserted[:200]):
            np.testing.assert_array_equal(self.get(name, [u])[int(u)], newvec[i])
        idx = call(self.c, "describe_index", collection=name, field="vector")
        self.assertEqual(idx["indexed_rows"], idx["total_rows"])
        self.assertEqual(idx["total_rows"], live)
        segs_after = call(self.c, "stats", collection=name)["segments"]
        self.assertLess(segs_after, segs_before)

        # The old objects go once no manifest names them and the grace period passed
        # (a flush elsewhere rolls the manifests on)
        self.create("roll")
        old = {k.split("/")[1].split("-")[0].split(".")[0] for k, _ in objects_before}
        merged = {"%020d" % s for s in st["merged_segments"]}
        self.assertTrue(merged <= old)
        deadline = time.monotonic() + 60
        left = merged
        while time.monotonic() < deadline:
            self.insert("roll", [1], rng.random((1, DIM), dtype=np.float32))
            call(self.c, "flush", collection="roll")
            keys = {k.split("/")[1].split("-")[0].split(".")[0] for k, _ in segment_objects(self.server, coll_id)}
            left = merged & keys
            if not left:
                break
            time.sleep(1)
        self.assertEqual(left, set())
        # 70k live rows where 110k were stored (100k, then 10k upserted)
        bytes_after = sum(b for _, b in segment_objects(self.server, coll_id))
        self.assertLess(bytes_after, bytes_before * 0.75)
        # ... and the collection still reads the same after a restart from the store
        self.c.close()
        self.server.stop()
        self.server.start()
        self.c = QuiverClient(uri=self.server.endpoint, timeout=120)
        self.assertEqual(self.count(name), live)
        self.assertEqual(self.search(name, queries), before)
        self.c.drop_collection("roll")

    # ------------------------------------------------------------------ TTL
    def test_borrowed_indexes(self):
        # HNSW and IVF_SQ8 read their segment's vectors (borrowed); the compactor builds
        # the merged segment's index on its own copy of the rows and the searcher points
        # it at its segment before that copy goes: searches after the compaction walk
        # the index and give every hit its row's exact distance
        rng = np.random.default_rng(11)
        n = 6000
        base = rng.random((n, DIM), dtype=np.float32)
        queries = rng.random((10, DIM), dtype=np.float32)
        for kind, params, sp in (("HNSW", {"M": 8, "efConstruction": 64}, {"ef": 64}),
                                 ("IVF_SQ8", {"nlist": 16}, {"nprobe": 16})):
            name = "b_" + kind.lower()
            self.create(name)
            for part in range(3):
                sl = slice(part * n // 3, (part + 1) * n // 3)
                self.insert(name, np.arange(n)[sl], base[sl])
                call(self.c, "flush", collection=name)
            call(self.c, "create_index", collection=name, field="vector", index_type=kind,
                 params=params)
            deleted = [i for i in range(n) if i % 3 == 0]
            call(self.c, "delete", collection=name, ids=deleted)
            cid = call(self.c, "compact", collection=name)["compaction_id"]
            st = wait_compaction(self.c, name, cid)
            self.assertEqual(st["state"], "completed", st)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                idx = call(self.c, "describe_index", collection=name, field="vector")
                if idx["indexed_rows"] == idx["total_rows"] == n - len(deleted):
                    break
                time.sleep(0.2)
            self.assertEqual(idx["indexed_rows"], n - len(deleted), idx)
            self.assertGreaterEqual(len(st["merged_segments"]), 3)
            live = np.array([i for i in range(n) if i % 3])
            r = call(self.c, "search", collection=name, vectors=vectors_bin(queries), dim=DIM,
                     limit=10, params=sp)
            found = 0
            for q, hits in zip(queries, r["results"]):
                exact = ((base[live] - q) ** 2).sum(axis=1)
                truth = set(live[np.argsort(exact)[:10]].tolist())
                self.assertEqual(len(hits), 10)
                for h in hits:
                    self.assertNotEqual(h["id"] % 3, 0)
                    want = float(((base[h["id"]] - q) ** 2).sum())
                    self.assertAlmostEqual(h["distance"], want, delta=1e-4 * max(1.0, want))
                found += len(truth & {h["id"] for h in hits})
            self.assertGreaterEqual(found / (10.0 * len(queries)), 0.9, kind)
            with open(os.path.join(self.server.dir, "server.log"), "rb") as f:
                self.assertNotIn(b"differ from those its index", f.read())

    def test_ttl_physical(self):
        name = "ttl"
        self.create(name, ttl_seconds=2)
        rng = np.random.default_rng(3)
        self.insert(name, np.arange(300), rng.random((300, DIM), dtype=np.float32))
        call(self.c, "flush", collection=name)
        time.sleep(2.5)
        self.insert(name, np.arange(300, 400), rng.random((100, DIM), dtype=np.float32))
        call(self.c, "flush", collection=name)
        self.assertEqual(self.count(name), 100)          # invisible at once
        self.assertEqual(call(self.c, "stats", collection=name)["rows"], 400)
        cid = call(self.c, "compact", collection=name)["compaction_id"]
        st = wait_compaction(self.c, name, cid)
        self.assertEqual(st["state"], "completed", st)
        self.assertGreaterEqual(st["rows_dropped"], 300)
        self.assertEqual(self.count(name), 100)
        self.assertLessEqual(call(self.c, "stats", collection=name)["rows"], 100)

    # ------------------------------------------------------------------ drops free objects
    def test_drop_frees_objects(self):
        name = "dropme"
        coll_id = self.create(name)
        call(self.c, "create_partition", collection=name, partition="p1")
        rng = np.random.default_rng(5)
        self.insert(name, np.arange(1000), rng.random((1000, DIM), dtype=np.float32), partition="p1")
        self.insert(name, np.arange(1000, 2000), rng.random((1000, DIM), dtype=np.float32))
        call(self.c, "flush", collection=name)
        self.assertGreaterEqual(len(segment_objects(self.server, coll_id)), 2)
        call(self.c, "drop_partition", collection=name, partition="p1")
        self.create("roll2")
        deadline = time.monotonic() + 60
        n = None
        while time.monotonic() < deadline:
            self.insert("roll2", [1], rng.random((1, DIM), dtype=np.float32))
            call(self.c, "flush", collection="roll2")
            n = len(segment_objects(self.server, coll_id))
            if n == 1:
                break
            time.sleep(1)
        self.assertEqual(n, 1)                           # the _default segment is left
        self.assertEqual(self.count(name), 1000)
        self.c.drop_collection(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.insert("roll2", [1], rng.random((1, DIM), dtype=np.float32))
            call(self.c, "flush", collection="roll2")
            n = len(segment_objects(self.server, coll_id))
            if n == 0:
                break
            time.sleep(1)
        self.assertEqual(n, 0)
        self.c.drop_collection("roll2")

    # ------------------------------------------------------------------ errors, qvctl
    def test_errors_and_qvctl(self):
        with self.assertRaises(QuiverException) as e:
            call(self.c, "compact", collection="nope")
        self.assertEqual(e.exception.code, "NOT_FOUND")
        name = "small"
        self.create(name)
        with self.assertRaises(QuiverException) as e:
            call(self.c, "get_compaction_state", collection=name, compaction_id=12345)
        self.assertEqual(e.exception.code, "NOT_FOUND")
        # Nothing to do: completed at once, nothing merged
        cid = call(self.c, "compact", collection=name)["compaction_id"]
        st = wait_compaction(self.c, name, cid)
        self.assertEqual((st["state"], st["merged_segments"], st["new_segments"]), ("completed", [], []))
        rng = np.random.default_rng(9)
        for k in range(3):
            self.insert(name, np.arange(k * 100, k * 100 + 100), rng.random((100, DIM), dtype=np.float32))
            call(self.c, "flush", collection=name)
        call(self.c, "delete", collection=name, ids=list(range(0, 300, 2)))
        env = dict(os.environ, QV_SERVER=self.server.endpoint)
        p = subprocess.run([os.path.join(BIN_DIR, "qvctl"), "compact", name], env=env,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("completed", p.stdout)
        self.assertIn("150 rows dropped", p.stdout)
        self.assertEqual(self.count(name), 150)
        self.assertEqual(call(self.c, "stats", collection=name)["segments"], 1)
        p = subprocess.run([os.path.join(BIN_DIR, "qvctl"), "compact", "--help"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--no-wait", p.stdout)


class AutoCompactTest(unittest.TestCase):
    """The policy compacts a segment on its own once enough of it is deleted."""

    def test_auto(self):
        server = Server("--auto-compaction-ratio", "0.2", "--gc-grace-sec", "2").start()
        try:
            c = QuiverClient(uri=server.endpoint, timeout=120)
            call(c, "create_collection", collection="auto", dimension=DIM)
            rng = np.random.default_rng(11)
            call(c, "insert", collection="auto", columns={
                "id": list(range(2000)),
                "vector": vectors_bin(rng.random((2000, DIM), dtype=np.float32))})
            call(c, "flush", collection="auto")
            call(c, "delete", collection="auto", ids=list(range(0, 1000)))
            deadline = time.monotonic() + 60
            rows = None
            while time.monotonic() < deadline:
                rows = call(c, "stats", collection="auto")["rows"]
                if rows == 1000:
                    break
                time.sleep(0.5)
            # stats counts live rows; the segment's figures show the compaction
            self.assertEqual(rows, 1000)
            found = False
            while time.monotonic() < deadline and not found:
                found = "compaction" in server.log_tail(200) and "1000 rows dropped" in server.log_tail(200)
                time.sleep(0.5)
            self.assertTrue(found, server.log_tail(40))
            self.assertEqual(call(c, "query", collection="auto", filter="",
                                  output_fields=["count(*)"])["rows"][0]["count(*)"], 1000)
            c.close()
        finally:
            server.cleanup()


class GcRaceTest(unittest.TestCase):
    """Garbage collection with no grace period, passes every second, while flushes,
    index builds and compactions keep writing new objects and manifests, each manifest
    written 1.2 s late (QV_FAULT_MANIFEST_DELAY_MS: new objects stay unnamed by any
    manifest for that long): every write and read succeeds, and a restart after
    kill -9 finds every object the newest manifest names (a deleted one would fail the
    recovery)."""

    def test_race(self):
        os.environ["QV_FAULT_MANIFEST_DELAY_MS"] = "1200"
        try:
            server = Server("--gc-grace-sec", "0", "--auto-compaction-ratio", "0").start()
        finally:
            os.environ.pop("QV_FAULT_MANIFEST_DELAY_MS", None)
        rng = np.random.default_rng(17)
        try:
            c = QuiverClient(uri=server.endpoint, timeout=120)
            call(c, "create_collection", collection="r", dimension=DIM)
            call(c, "create_index", collection="r", field="vector", index_type="HNSW",
                 params={"M": 8, "efConstruction": 32})
            deadline = time.monotonic() + 15
            next_id, live, rounds = 0, set(), 0
            while time.monotonic() < deadline:
                ids = list(range(next_id, next_id + 500))
                next_id += 500
                call(c, "insert", collection="r", columns={
                    "id": ids, "vector": vectors_bin(rng.random((500, DIM), dtype=np.float32))})
                live.update(ids)
                call(c, "flush", collection="r")
                gone = ids[:100]
                call(c, "delete", collection="r", ids=gone)
                live.difference_update(gone)
                if rounds % 2:
                    wait_compaction(c, "r", call(c, "compact", collection="r")["compaction_id"])
                r = call(c, "search", collection="r", vectors=vectors_bin(rng.random((1, DIM), dtype=np.float32)),
                         dim=DIM, limit=5)
                self.assertEqual(len(r["results"][0]), 5)
                rounds += 1
            self.assertGreater(rounds, 2)
            self.assertIn("garbage collection deleted", server.log_tail(2000))
            c.close()
            server.proc.kill()
            server.proc.wait()
            server.proc = None
            server.start()
            c = QuiverClient(uri=server.endpoint, timeout=120)
            n = call(c, "query", collection="r", filter="", output_fields=["count(*)"])["rows"][0]["count(*)"]
            self.assertEqual(n, len(live))
            c.close()
        finally:
            server.cleanup()


class KillDuringCompactionTest(unittest.TestCase):
    """kill -9 at random points of compactions (slowed by --compaction-mb-per-sec), in
    turn: at once, while it writes, and just after it completed (its record logged,
    the manifest perhaps not yet written): after each restart every acknowledged live
    row is there exactly once."""

    def test_kill_rounds(self):
        server = Server("--compaction-mb-per-sec", "2", "--gc-grace-sec", "1",
                        "--auto-compaction-ratio", "0").start()
        rnd = random.Random(13)
        rng = np.random.default_rng(13)
        try:
            c = QuiverClient(uri=server.endpoint, timeout=120)
            call(c, "create_collection", collection="k", dimension=DIM)
            call(c, "create_index", collection="k", field="vector", index_type="HNSW",
                 params={"M": 8, "efConstruction": 32})
            live = set()
            next_id = 0
            completed = 0
            for rnd_no in range(10):
                # New rows in two segments, then a delete of some live ones
                for _ in range(2):
                    ids = list(range(next_id, next_id + 3000))
                    next_id += 3000
                    call(c, "insert", collection="k", columns={
                        "id": ids, "vector": vectors_bin(rng.random((3000, DIM), dtype=np.float32))})
                    call(c, "flush", collection="k")
                    live.update(ids)
                gone = rnd.sample(sorted(live), len(live) // 5)
                for i in range(0, len(gone), 5000):
                    call(c, "delete", collection="k", ids=gone[i:i + 5000])
                live.difference_update(gone)
                cid = call(c, "compact", collection="k")["compaction_id"]
                when = rnd_no % 3
                if when == 1:
                    time.sleep(rnd.uniform(0.1, 1.0))
                if when == 2:
                    self.assertEqual(wait_compaction(c, "k", cid)["state"], "completed")
                    completed += 1
                server.proc.kill()
                server.proc.wait()
                server.proc = None
                c.close()
                server.start()
                c = QuiverClient(uri=server.endpoint, timeout=120)
                n = call(c, "query", collection="k", filter="",
                         output_fields=["count(*)"])["rows"][0]["count(*)"]
                self.assertEqual(n, len(live), "round %d" % rnd_no)
                # Each live id exactly once, none of the deleted ones
                seen = []
                for lo in range(0, next_id, 5000):
                    rows = call(c, "query", collection="k",
                                filter="id >= %d and id < %d" % (lo, lo + 5000), limit=16384)["rows"]
                    seen.extend(r["id"] for r in rows)
                self.assertEqual(len(seen), len(set(seen)), "round %d: a row twice" % rnd_no)
                self.assertEqual(set(seen), live, "round %d" % rnd_no)
            self.assertEqual(completed, 3)
            c.close()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
