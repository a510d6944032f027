"""--memory-mb against a real quiver: inserts are refused RESOURCE_EXHAUSTED, naming the
budget, once the rows and indexes held in memory would pass it (never an OOM); `stats`
reports memory by component; deleting rows and compacting frees room for more; an index
whose estimated size would pass the budget is not built (describe_index: failed, and
why), while a smaller one is, and searches go on exactly meanwhile."""
import time
import unittest

import numpy as np

from qv_server import Server
from quiver import QuiverClient, QuiverException

DIM = 16


def call(c, op, **fields):
    return c._call(op, 120, **fields)


class MemoryBudgetTest(unittest.TestCase):
    def test_budget(self):
        server = Server("--memory-mb", "6", "--auto-compaction-ratio", "0",
                        "--gc-grace-sec", "1").start()
        try:
            c = QuiverClient(uri=server.endpoint, timeout=120)
            call(c, "create_collection", collection="m", dimension=DIM)
            rng = np.random.default_rng(1)
            next_id, refused = 0, None
            for _ in range(200):
                try:
                    call(c, "insert", collection="m", columns={
                        "id": list(range(next_id, next_id + 5000)),
                        "vector": rng.random((5000, DIM), dtype=np.float32).tobytes()})
                    next_id += 5000
                except QuiverException as e:
                    refused = e
                    break
                time.sleep(0.05)            # the searcher measures every second
                if next_id % 20000 == 0:
                    time.sleep(1.1)
            self.assertIsNotNone(refused, "never refused after %d rows" % next_id)
            self.assertEqual(refused.code, "RESOURCE_EXHAUSTED")
            self.assertIn("--memory-mb", str(refused))
            self.assertIn("6 MiB", str(refused))
            stats = call(c, "stats")
            mem = stats["memory"]
            for key in ("growing_segments", "flushed_segments", "vector_indexes",
                        "primary_key_index", "filter_cache", "budget"):
                self.assertIn(key, mem)
            self.assertEqual(mem["budget"], 6 << 20)
            held = mem["growing_segments"] + mem["flushed_segments"] + mem["vector_indexes"] \
                + mem["primary_key_index"]
            self.assertGreater(held, 4 << 20)
            # Everything acknowledged is there
            n = call(c, "query", collection="m", filter="", output_fields=["count(*)"])["rows"][0]["count(*)"]
            self.assertEqual(n, next_id)
            # Three rows in four deleted and compacted away: room again (the key index
            # keeps its size)
            call(c, "flush", collection="m")
            call(c, "delete", collection="m", ids=[i for i in range(next_id) if i % 4])
            cid = call(c, "compact", collection="m")["compaction_id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if call(c, "get_compaction_state", collection="m", compaction_id=cid)["state"] != "executing":
                    break
                time.sleep(0.2)
            time.sleep(1.5)
            call(c, "insert", collection="m", columns={
                "id": list(range(next_id, next_id + 5000)),
                "vector": rng.random((5000, DIM), dtype=np.float32).tobytes()})
            after = call(c, "stats")["memory"]
            self.assertLess(after["growing_segments"] + after["flushed_segments"],
                            mem["growing_segments"] + mem["flushed_segments"])
            c.close()
        finally:
            server.cleanup()

    def test_index_over_budget(self):
        # 100k x 32-d: about 21 MiB of rows and keys held. An HNSW index of M=48 would
        # add about 38 MiB (398-byte nodes: 96 links; it reads the segment's vectors),
        # an IVF_FLAT one about 14 MiB (its own copy): under a 40 MiB budget the first
        # is refused, the second built.
        server = Server("--memory-mb", "40", "--auto-compaction-ratio", "0").start()
        try:
            c = QuiverClient(uri=server.endpoint, timeout=120)
            dim, rows = 32, 100000
            call(c, "create_collection", collection="m", dimension=dim)
            rng = np.random.default_rng(2)
            vecs = rng.random((rows, dim), dtype=np.float32)
            for i in range(0, rows, 25000):
                call(c, "insert", collection="m", columns={
                    "id": list(range(i, i + 25000)), "vector": vecs[i:i + 25000].tobytes()})
            call(c, "flush", collection="m")
            time.sleep(1.5)                 # the searcher measures every second

            def settle(kind, params):
                call(c, "create_index", collection="m", field="vector", index_type=kind,
                     params=params)
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    d = call(c, "describe_index", collection="m", field="vector")
                    if d["state"] != "building":
                        return d
                    time.sleep(0.2)
                self.fail("the %s build did not end" % kind)

            d = settle("HNSW", {"M": 48, "efConstruction": 64})
            self.assertEqual(d["state"], "failed", d)
            self.assertIn("--memory-mb", d["build_error"])
            self.assertIn("40 MiB", d["build_error"])
            self.assertEqual(call(c, "stats")["memory"]["vector_indexes"], 0)
            # Searches go on, exactly: a row finds itself
            hit = call(c, "search", collection="m", vectors=vecs[777].tobytes(), dim=dim,
                       limit=1)
            self.assertEqual(hit["results"][0][0]["id"], 777)
            call(c, "drop_index", collection="m", field="vector")
            d = settle("IVF_FLAT", {"nlist": 64})
            self.assertEqual(d["state"], "finished", d)
            self.assertEqual(d["build_error"], "")
            self.assertGreater(call(c, "stats")["memory"]["vector_indexes"], 12 << 20)
            c.close()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
