"""QuiverClient against a real quiver server: every call, its return shape (pymilvus's),
errors with their protocol codes, numpy input and pipelined batches."""
import os
import sys
import threading
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quiver import (CollectionSchema, DataType, IndexParams, MilvusClient,  # noqa: E402
                    MilvusException, QuiverClient, QuiverException)
from qv_server import Server, free_port  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    SERVER = Server().start()


def tearDownModule():
    SERVER.cleanup()


def schema(dim=8, metric="L2", dynamic=False, varchar_pk=False):
    s = QuiverClient.create_schema(enable_dynamic_field=dynamic)
    if varchar_pk:
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
    else:
        s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim, metric_type=metric)
    s.add_field("tag", DataType.VARCHAR, max_length=16)
    s.add_field("n", DataType.INT64)
    return s


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = QuiverClient(uri=SERVER.endpoint, timeout=30)
        self.name = "t_" + self._testMethodName
        if self.c.has_collection(self.name):
            self.c.drop_collection(self.name)

    def tearDown(self):
        self.c.close()

    def fill(self, n=200, dim=8, metric="L2", seed=1):
        self.c.create_collection(self.name, schema=schema(dim, metric))
        rng = np.random.default_rng(seed)
        vecs = rng.random((n, dim), dtype=np.float32)
        res = self.c.insert(self.name, {"id": np.arange(n), "vector": vecs,
                                        "tag": ["even" if i % 2 == 0 else "odd" for i in range(n)],
                                        "n": np.arange(n) * 10})
        self.assertEqual(res["insert_count"], n)
        return vecs

    # -------------------------------------------------------------- collections
    def test_collections(self):
        self.assertFalse(self.c.has_collection(self.name))
        self.c.create_collection(self.name, schema=schema())
        self.assertTrue(self.c.has_collection(self.name))
        self.assertIn(self.name, self.c.list_collections())
        d = self.c.describe_collection(self.name)
        self.assertEqual(d["collection_name"], self.name)
        self.assertEqual([f["name"] for f in d["fields"]], ["id", "vector", "tag", "n"])
        self.assertFalse(d["auto_id"])
        self.assertEqual(self.c.get_load_state(self.name), {"state": "Loaded"})
        self.c.load_collection(self.name)
        with self.assertRaises(QuiverException) as e:
            self.c.create_collection(self.name, schema=schema())
        self.assertEqual(e.exception.code, "ALREADY_EXISTS")
        self.c.drop_collection(self.name)
        self.assertFalse(self.c.has_collection(self.name))
        with self.assertRaises(MilvusException) as e:
            self.c.describe_collection(self.name)
        self.assertEqual(e.exception.code, "NOT_FOUND")
        self.assertIn(self.name, e.exception.message)

    def test_alter_collection_properties(self):
        self.fill(20)
        self.c.alter_collection_properties(self.name, {"collection.ttl.seconds": 60,
                                                       "description": "kept a minute"})
        d = self.c.describe_collection(self.name)
        self.assertEqual(d["properties"]["collection.ttl.seconds"], "60")
        self.assertEqual(d["description"], "kept a minute")
        # rows inserted just now are younger than the TTL
        self.assertEqual(self.c.query(self.name, "id >= 0", output_fields=["count(*)"]),
                         [{"count(*)": 20}])
        # a TTL of one second: a second and a half later they are gone from every read
        self.c.alter_collection_properties(self.name, {"ttl_seconds": 1})
        time.sleep(1.5)
        self.assertEqual(self.c.query(self.name, "id >= 0", output_fields=["count(*)"]),
                         [{"count(*)": 0}])
        self.assertEqual(self.c.get(self.name, ids=[0, 1]), [])
        with self.assertRaises(QuiverException) as e:
            self.c.alter_collection_properties(self.name, {"consistency": "sometimes"})
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")

    def test_schema_as_field_maps_and_auto_id(self):
        fields = [{"name": "pk", "type": "int64", "primary": True, "auto_id": True},
                  {"name": "emb", "type": "float_vector", "dim": 3}]
        self.c.create_collection(self.name, schema=fields)
        self.assertTrue(self.c.describe_collection(self.name)["auto_id"])
        res = self.c.insert(self.name, [{"emb": [1, 2, 3]}, {"emb": np.ones(3, np.float32)}])
        self.assertEqual(res["insert_count"], 2)
        self.assertEqual(len(set(res["ids"])), 2)
        rows = self.c.get(self.name, res["ids"], output_fields=["pk"])
        self.assertEqual(sorted(r["pk"] for r in rows), sorted(res["ids"]))

    def test_varchar_pk(self):
        self.c.create_collection(self.name, schema=schema(dim=2, varchar_pk=True))
        self.c.insert(self.name, [{"id": "a", "vector": [0, 0], "tag": "x", "n": 1},
                                  {"id": "b", "vector": [1, 1], "tag": "y", "n": 2}])
        hits = self.c.search(self.name, [[1, 1]], limit=1)
        self.assertEqual(hits[0][0]["id"], "b")
        self.assertEqual(self.c.delete(self.name, ids="a")["delete_count"], 1)
        self.assertEqual([r["id"] for r in self.c.get(self.name, ["a", "b"])], ["b"])

    # -------------------------------------------------------------- writes
    def test_insert_rows_and_upsert(self):
        self.c.create_collection(self.name, schema=schema(dim=4))
        rows = [{"id": i, "vector": [float(i)] * 4, "tag": "r", "n": i} for i in range(5)]
        res = self.c.insert(self.name, rows)
        self.assertEqual(res["ids"], [0, 1, 2, 3, 4])
        self.assertGreater(res["ts"], 0)
        res = self.c.upsert(self.name, {"id": 2, "vector": np.full(4, 9, np.float32),
                                        "tag": "u", "n": np.int64(20)})
        self.assertEqual(res["upsert_count"], 1)
        self.assertEqual(self.c.get(self.name, 2, output_fields=["tag", "n"]),
                         [{"id": 2, "tag": "u", "n": 20}])
        self.assertEqual(self.c.get_collection_stats(self.name), {"row_count": 5})

    def test_insert_bad_rows(self):
        self.c.create_collection(self.name, schema=schema(dim=4))
        with self.assertRaises(QuiverException) as e:
            self.c.insert(self.name, [{"id": 1, "vector": [1, 2, 3], "tag": "a", "n": 1}])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(QuiverException) as e:
            self.c.insert(self.name, [{"id": 1, "vector": [1, 2, 3, 4], "tag": "a", "n": 1,
                                       "color": "red"}])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("color", e.exception.message)
        with self.assertRaises(QuiverException) as e:
            self.c.insert(self.name, {"id": [1, 2], "vector": np.zeros((3, 4)),
                                      "tag": ["a", "b"], "n": [1, 2]})
        self.assertIn("different lengths", e.exception.message)
        self.assertEqual(self.c.get_collection_stats(self.name), {"row_count": 0})

    def test_pipelined_batches(self):
        dim, n = 16, 10_000
        self.c.create_collection(self.name, schema=schema(dim))
        vecs = np.random.default_rng(2).random((n, dim), dtype=np.float32)
        res = self.c.insert(self.name, {"id": np.arange(n), "vector": vecs,
                                        "tag": ["p"] * n, "n": np.zeros(n, np.int64)},
                            batch_size=333)
        self.assertEqual(res["insert_count"], n)
        self.assertEqual(res["ids"], list(range(n)))       # replies matched in order
        self.assertEqual(self.c.query(self.name, filter="", output_fields=["count(*)"]),
                         [{"count(*)": n}])
        # every vector arrived intact (bin, little-endian float32)
        got = self.c.search(self.name, vecs[[0, 4321, n - 1]], limit=1)
        self.assertEqual([h[0]["id"] for h in got], [0, 4321, n - 1])
        self.assertEqual([h[0]["distance"] for h in got], [0.0, 0.0, 0.0])

    def test_failed_batch_reports_what_was_acknowledged(self):
        self.c.create_collection(self.name, schema=schema(dim=2))
        rows = [{"id": i, "vector": [0, 0], "tag": "x", "n": i} for i in range(30)]
        rows[25]["vector"] = [0, 0, 0]
        with self.assertRaises(QuiverException) as e:
            self.c.insert(self.name, rows, batch_size=10)
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("request 3", e.exception.message)
        self.assertIn("20 rows", e.exception.message)
        self.assertEqual(self.c.get_collection_stats(self.name), {"row_count": 20})

    def test_delete(self):
        self.fill(100)
        self.assertEqual(self.c.delete(self.name, ids=[1, 2, 3])["delete_count"], 3)
        self.assertEqual(self.c.delete(self.name, filter="n >= 900")["delete_count"], 10)
        self.assertEqual(self.c.query(self.name, filter="", output_fields=["count(*)"]),
                         [{"count(*)": 87}])
        with self.assertRaises(QuiverException) as e:
            self.c.delete(self.name)
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")

    # -------------------------------------------------------------- reads
    def test_search_matches_numpy(self):
        vecs = self.fill(500, dim=8, metric="L2")
        queries = np.random.default_rng(7).random((20, 8), dtype=np.float32)
        res = self.c.search(self.name, queries, limit=5)
        self.assertEqual(len(res), 20)
        for q, hits in zip(queries, res):
            d = ((vecs - q) ** 2).sum(axis=1)
            want = list(np.argsort(d, kind="stable")[:5])
            self.assertEqual([h["id"] for h in hits], want)
            np.testing.assert_allclose([h["distance"] for h in hits], d[want], rtol=1e-4)
            self.assertEqual(hits[0]["entity"], {})
        # lists of lists and one bare vector give the same answer
        self.assertEqual(self.c.search(self.name, queries[:2].tolist(), limit=5), res[:2])
        self.assertEqual(self.c.search(self.name, list(queries[3]), limit=5), res[3:4])

    def test_search_filter_output_params(self):
        self.fill(300)
        self.c.create_index(self.name, IndexParams().add_index("vector", "HNSW", params={"M": 8}))
        res = self.c.search(self.name, np.full((2, 8), 0.5, np.float32), limit=7,
                            filter='tag == "odd" and n < 2000', output_fields=["tag", "n"],
                            search_params={"metric_type": "L2", "params": {"ef": 64}})
        self.assertEqual([len(h) for h in res], [7, 7])
        for hits in res:
            for h in hits:
                self.assertEqual(h["entity"]["tag"], "odd")
                self.assertLess(h["entity"]["n"], 2000)
                self.assertEqual(h["id"] % 2, 1)
            self.assertEqual([h["distance"] for h in hits], sorted(h["distance"] for h in hits))
        with self.assertRaises(QuiverException) as e:
            self.c.search(self.name, [[0.5] * 8], filter="tag ==", limit=1)
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(QuiverException) as e:
            self.c.search(self.name, [[0.5] * 3], limit=1)
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")

    def test_cosine_and_ip(self):
        for metric in ("COSINE", "IP"):
            name = self.name + metric
            if self.c.has_collection(name):
                self.c.drop_collection(name)
            self.c.create_collection(name, schema=schema(dim=2, metric=metric))
            self.c.insert(name, [{"id": 1, "vector": [1, 0], "tag": "", "n": 0},
                                 {"id": 2, "vector": [3, 3], "tag": "", "n": 0}])
            hits = self.c.search(name, [[1, 1]], limit=2)[0]
            if metric == "COSINE":
                self.assertEqual(hits[0]["id"], 2)
                self.assertAlmostEqual(hits[0]["distance"], 1.0, places=5)
            else:
                self.assertEqual(hits[0]["id"], 2)
                self.assertAlmostEqual(hits[0]["distance"], 6.0, places=5)

    def test_query_and_get(self):
        self.fill(50)
        rows = self.c.query(self.name, filter="n < 30", output_fields=["tag"])
        self.assertEqual(sorted(r["id"] for r in rows), [0, 1, 2])
        self.assertEqual({r["id"]: r["tag"] for r in rows}, {0: "even", 1: "odd", 2: "even"})
        self.assertEqual(len(self.c.query(self.name, filter="id >= 0", limit=5, offset=45)), 5)
        self.assertEqual(self.c.query(self.name, filter='tag == "odd"',
                                      output_fields=["count(*)"]), [{"count(*)": 25}])
        self.assertEqual(self.c.query(self.name, ids=[3, 999], output_fields=["n"]),
                         [{"id": 3, "n": 30}])
        self.assertEqual(self.c.get(self.name, []), [])

    def test_consistency_session(self):
        self.c.create_collection(self.name, schema=schema(dim=2))
        self.c.insert(self.name, [{"id": 1, "vector": [1, 1], "tag": "", "n": 0}])
        rows = self.c.query(self.name, filter="id == 1", consistency_level="Session")
        self.assertEqual(rows, [{"id": 1}])
        hits = self.c.search(self.name, [[1, 1]], limit=1, consistency_level="Bounded")
        self.assertEqual(hits[0][0]["id"], 1)
        with self.assertRaises(QuiverException) as e:
            self.c.query(self.name, filter="id == 1", consistency_level="Whenever")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")

    # -------------------------------------------------------------- partitions, indexes
    def test_partitions(self):
        self.c.create_collection(self.name, schema=schema(dim=2))
        self.c.create_partition(self.name, "p1")
        self.assertEqual(self.c.list_partitions(self.name), ["_default", "p1"])
        self.assertTrue(self.c.has_partition(self.name, "p1"))
        self.c.insert(self.name, [{"id": 1, "vector": [1, 1], "tag": "", "n": 0}],
                      partition_name="p1")
        self.c.insert(self.name, [{"id": 2, "vector": [1, 1], "tag": "", "n": 0}])
        hits = self.c.search(self.name, [[1, 1]], limit=5, partition_names=["p1"])
        self.assertEqual([h["id"] for h in hits[0]], [1])
        self.assertEqual(self.c.query(self.name, filter="", output_fields=["count(*)"],
                                      partition_names="_default"), [{"count(*)": 1}])
        self.c.drop_partition(self.name, "p1")
        self.assertFalse(self.c.has_partition(self.name, "p1"))
        with self.assertRaises(QuiverException) as e:
            self.c.insert(self.name, [{"id": 3, "vector": [1, 1], "tag": "", "n": 0}],
                          partition_name="p1")
        self.assertEqual(e.exception.code, "NOT_FOUND")

    def test_indexes(self):
        self.fill(300)
        self.assertEqual(self.c.flush(self.name) != [], True)
        ip = self.c.prepare_index_params()
        ip.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="L2")
        ip.add_index(field_name="n", index_type="STL_SORT")
        self.c.create_index(self.name, ip)
        self.assertEqual(sorted(self.c.list_indexes(self.name)), ["n", "vector"])
        d = self.c.describe_index(self.name, "vector")
        self.assertEqual((d["index_type"], d["metric_type"], d["field_name"]),
                         ("HNSW", "L2", "vector"))
        self.assertEqual(d["total_rows"], 300)
        with self.assertRaises(QuiverException) as e:
            self.c.create_index(self.name, [{"field_name": "vector", "index_type": "HNSW",
                                             "metric_type": "IP"}])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.c.drop_index(self.name, "vector")
        self.assertEqual(self.c.list_indexes(self.name), ["n"])
        with self.assertRaises(QuiverException) as e:
            self.c.describe_index(self.name, "vector")
        self.assertEqual(e.exception.code, "NOT_FOUND")

    def test_create_with_index_params(self):
        ip = IndexParams().add_index("vector", "HNSW", metric_type="IP",
                                     params={"M": 8, "efConstruction": 64})
        s = CollectionSchema(auto_id=True)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
        self.c.create_collection(self.name, schema=s, index_params=ip)
        d = self.c.describe_collection(self.name)
        self.assertTrue(d["auto_id"])
        self.assertEqual(d["fields"][1]["metric"], "IP")
        self.assertEqual(self.c.describe_index(self.name, "vector")["params"],
                         {"M": 8, "efConstruction": 64})

    # -------------------------------------------------------------- transport
    def test_stats_flush_version(self):
        self.fill(10)
        self.assertTrue(self.c.get_server_version().startswith("quiver/"))
        self.assertIsInstance(self.c.flush(self.name), list)
        self.assertIn("rows", self.c.stats(self.name))
        self.assertIsInstance(self.c.stats(), dict)

    def test_timeout_and_uri(self):
        port = free_port()                  # nobody listens there
        with QuiverClient(uri="tcp://127.0.0.1:%d" % port, timeout=0.3) as dead:
            with self.assertRaises(QuiverException) as e:
                dead.list_collections()
            self.assertEqual(e.exception.code, "TIMEOUT")
        with self.assertRaises(QuiverException) as e:
            QuiverClient(uri="mongodb://x")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        # pymilvus's http:// URI and class name port unchanged
        host_port = SERVER.endpoint[len("tcp://"):]
        with MilvusClient(uri="http://" + host_port, token="root:Milvus") as m:
            self.assertIsInstance(m.list_collections(), list)

    def test_threads_share_a_client(self):
        self.fill(100)
        errors = []

        def worker(seed):
            try:
                q = np.random.default_rng(seed).random((1, 8), dtype=np.float32)
                for _ in range(20):
                    self.assertEqual(len(self.c.search(self.name, q, limit=3)[0]), 3)
            except Exception as e:          # reported below
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
