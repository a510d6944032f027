"""qvctl against a real quiver: query, search (inline vectors, filters, index params),
insert/upsert JSON lines, import of .fvecs/.bvecs/.npy/.jsonl, partitions,
describe-index/drop-index, --output json on every command, help text and exit codes."""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

import numpy as np

from qv_server import BIN_DIR, Server

SERVER = None
QVCTL = os.path.join(BIN_DIR, "qvctl")


def setUpModule():
    global SERVER
    SERVER = Server().start()


def tearDownModule():
    SERVER.cleanup()


def qvctl(*args, input=None):
    """Runs qvctl; returns (exit status, stdout, stderr)."""
    env = dict(os.environ, QV_SERVER=SERVER.endpoint)
    p = subprocess.run([QVCTL, "--timeout", "30"] + [str(a) for a in args], env=env,
                       input=input, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def qjson(*args):
    """qvctl --output json ...: the parsed document (and the command must succeed)."""
    rc, out, err = qvctl("--output", "json", *args)
    if rc != 0:
        raise AssertionError("qvctl %s: exit %d: %s%s" % (" ".join(map(str, args)), rc, out, err))
    return json.loads(out)


class QvctlTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qvctl-test.")
        self.name = "c_" + self._testMethodName
        qvctl("drop", self.name)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def jsonl(self, name, rows):
        with open(self.path(name), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        return self.path(name)

    def count(self, filter_=""):
        return qjson("query", self.name, "--filter", filter_, "--count")[0]["count(*)"]

    def test_insert_upsert_query_jsonl(self):
        self.assertEqual(qjson("create", self.name, "--dim", 3), {"ok": True, "collection": self.name})
        # the explicit schema has no 'tag': rows are id + vector only
        rows = [{"id": i, "vector": [i, i + 1, i + 2]} for i in range(50)]
        res = qjson("insert", self.name, self.jsonl("rows.jsonl", rows))
        self.assertEqual(res["rows"], 50)
        rc, out, err = qvctl("upsert", self.name, self.jsonl("up.jsonl", rows[:5]))
        self.assertEqual(rc, 0, err)
        self.assertIn("upserted 5 rows", out)
        self.assertEqual(self.count(), 50)
        self.assertEqual(self.count("id >= 40"), 10)
        rc, out, err = qvctl("query", self.name, "--filter", "id < 3", "--output-fields", "vector")
        self.assertEqual(rc, 0, err)
        got = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(sorted(r["id"] for r in got), [0, 1, 2])
        page = qjson("query", self.name, "--filter", "id >= 0", "--limit", 5, "--offset", 10)
        self.assertEqual(len(page), 5)
        rc, out, _ = qvctl("query", self.name, "--count")
        self.assertEqual(out.strip(), "50")
        # stdin
        rc, out, err = qvctl("insert", self.name, "-", input=json.dumps(
            {"id": 99, "vector": [0, 0, 0]}) + "\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.count(), 51)

    def test_bad_input_files(self):
        qjson("create", self.name, "--dim", 2)
        with open(self.path("bad.jsonl"), "w") as f:
            f.write('{"id": 1, "vector": [1, 2]}\n{"id": 2, "vector": [1,\n')
        rc, out, err = qvctl("insert", self.name, self.path("bad.jsonl"))
        self.assertEqual(rc, 1)
        self.assertIn("line 2", err)
        self.assertEqual(self.count(), 0)               # nothing sent on a parse error
        rc, _, err = qvctl("insert", self.name, self.jsonl("dim.jsonl", [
            {"id": 1, "vector": [1, 2]}, {"id": 2, "vector": [1, 2, 3]}]))
        self.assertEqual(rc, 1)
        self.assertIn("INVALID_ARGUMENT", err)
        self.assertIn("0 rows acknowledged", err)
        np.save(self.path("f64.npy"), np.zeros((3, 2)))
        rc, _, err = qvctl("import", self.name, self.path("f64.npy"))
        self.assertEqual(rc, 1)
        self.assertIn("'<f8'", err)
        np.save(self.path("3d.npy"), np.zeros((3, 2, 2), np.float32))
        rc, _, err = qvctl("import", self.name, self.path("3d.npy"))
        self.assertEqual(rc, 1)
        self.assertIn("2-D", err)
        with open(self.path("short.npy"), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00")
        rc, _, err = qvctl("import", self.name, self.path("short.npy"))
        self.assertEqual(rc, 1)
        np.save(self.path("d3.npy"), np.zeros((3, 3), np.float32))
        rc, _, err = qvctl("import", self.name, self.path("d3.npy"))
        self.assertEqual(rc, 1)
        self.assertIn("dim 2", err)
        rc, _, err = qvctl("import", self.name, self.path("x.csv"))
        self.assertEqual(rc, 1)
        self.assertIn("unknown file type", err)
        self.assertEqual(self.count(), 0)

    def test_import_formats(self):
        dim = 8
        qjson("create", self.name, "--dim", dim)
        rng = np.random.default_rng(3)
        f = rng.random((300, dim), dtype=np.float32)
        np.save(self.path("a.npy"), f)
        self.assertEqual(qjson("import", self.name, self.path("a.npy"))["rows"], 300)
        with open(self.path("b.fvecs"), "wb") as out:
            for v in f:
                out.write(struct.pack("<i", dim) + v.astype("<f4").tobytes())
        self.assertEqual(qjson("import", self.name, self.path("b.fvecs"), "--start-id", 1000,
                               "--limit", 100)["rows"], 100)
        b = rng.integers(0, 256, (40, dim), dtype=np.uint8)
        with open(self.path("c.bvecs"), "wb") as out:
            for v in b:
                out.write(struct.pack("<i", dim) + v.tobytes())
        self.assertEqual(qjson("import", self.name, self.path("c.bvecs"), "--start-id", 2000,
                               "--batch", 7)["rows"], 40)
        rows = [{"id": 3000 + i, "vector": f[i].tolist()} for i in range(20)]
        self.assertEqual(qjson("import", self.name, self.jsonl("d.jsonl", rows))["rows"], 20)
        self.assertEqual(self.count(), 460)
        # the vectors arrived intact: each one finds itself at distance 0
        for vec, want in ((f[17], {17, 1017, 3017}), (b[5].astype(np.float32), {2005})):
            res = qjson("search", self.name, json.dumps(vec.tolist()), "--k", 3)
            hits = res["results"][0]
            exact = {h["id"] for h in hits if h["distance"] == 0}
            self.assertEqual(exact, want)
        # searching with a file of queries and a ground truth gives recall 1 (exact search)
        with open(self.path("gt.ivecs"), "wb") as out:
            for i in range(5):
                out.write(struct.pack("<ii", 1, 2000 + i))
        res = qjson("search", self.name, self.path("c.bvecs"), "--k", 1, "--limit", 5,
                    "--gt", self.path("gt.ivecs"))
        self.assertEqual((res["nq"], res["recall"]), (5, 1.0))

    def test_search_inline_filter_params(self):
        qjson("create", self.name, "--dim", 2)
        rows = [{"id": i, "vector": [float(i), 0.0]} for i in range(100)]
        qjson("insert", self.name, self.jsonl("r.jsonl", rows))
        rc, out, err = qvctl("search", self.name, "10,0", "--k", 3)
        self.assertEqual(rc, 0, err)
        self.assertIn("query 0:", out)
        self.assertRegex(out, r"1  id 10  distance 0\b")
        res = qjson("search", self.name, "[10, 0]", "--k", 3, "--filter", "id > 50")
        self.assertEqual([h["id"] for h in res["results"][0]], [51, 52, 53])
        qjson("flush", self.name)
        out = qjson("index", self.name, "--type", "HNSW", "--M", 8)
        self.assertEqual(out["indexed_rows"], 100)
        res = qjson("search", self.name, "[10, 0]", "--k", 3, "--ef", 32)
        ids = [h["id"] for h in res["results"][0]]
        self.assertEqual(ids[0], 10)
        self.assertEqual(sorted(ids[1:]), [9, 11])      # both at distance 1: either order
        rc, _, err = qvctl("search", self.name, "[1, 2, 3]", "--k", 1)
        self.assertEqual(rc, 1)
        self.assertIn("dim 2", err)
        rc, _, err = qvctl("search", self.name, "[1, x]", "--k", 1)
        self.assertEqual(rc, 1)
        self.assertIn("not a vector", err)
        rc, _, err = qvctl("search", self.name, "[1, 0]", "--filter", "id >")
        self.assertEqual(rc, 1)
        self.assertIn("INVALID_ARGUMENT", err)

    def test_partitions_and_indexes(self):
        qjson("create", self.name, "--dim", 2)
        self.assertEqual(qjson("partitions", self.name, "--create", "p1"), {"ok": True})
        rc, out, _ = qvctl("partitions", self.name)
        self.assertEqual(out.split(), ["_default", "p1"])
        qjson("insert", self.name, self.jsonl("r.jsonl", [{"id": 1, "vector": [1, 1]}]),
              "--partition", "p1")
        self.assertEqual(qjson("query", self.name, "--count", "--partitions", "p1"),
                         [{"count(*)": 1}])
        rc, _, err = qvctl("partitions", self.name, "--create", "p1")
        self.assertEqual(rc, 1)
        self.assertIn("ALREADY_EXISTS", err)
        qjson("partitions", self.name, "--drop", "p1")
        self.assertEqual(qjson("partitions", self.name), {"partitions": ["_default"]})
        self.assertEqual(self.count(), 0)
        qjson("index", self.name, "--type", "IVF_FLAT", "--nlist", 4)
        d = qjson("describe-index", self.name)
        self.assertEqual((d["field"], d["index_type"], d["params"]), ("vector", "IVF_FLAT", {"nlist": 4}))
        rc, out, _ = qvctl("describe-index", self.name, "--field", "vector")
        self.assertIn('index_type: "IVF_FLAT"', out)
        self.assertEqual(qjson("drop-index", self.name), {"ok": True})
        rc, out, err = qvctl("--output", "json", "describe-index", self.name)
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["code"], "NOT_FOUND")
        rc, _, err = qvctl("drop-index", self.name, "--field", "nope")
        self.assertEqual(rc, 1)

    def test_json_everywhere(self):
        self.assertTrue(qjson("ping")["version"].startswith("quiver/"))
        qjson("create", self.name, "--dim", 2)
        self.assertIn(self.name, qjson("list")["collections"])
        self.assertEqual(qjson("describe", self.name)["rows"], 0)
        qjson("insert", self.name, self.jsonl("r.jsonl", [{"id": 5, "vector": [1, 1]}]))
        self.assertEqual(qjson("get", self.name, 5, 6), [{"id": 5}])
        self.assertIn("segments", qjson("flush", self.name))
        self.assertEqual(qjson("stats", self.name)["rows"], 1)
        self.assertIn("rows", qjson("stats"))
        self.assertEqual(qjson("delete", self.name, 5)["deleted"], 1)
        self.assertEqual(qjson("drop", self.name), {"ok": True, "collection": self.name})
        rc, out, err = qvctl("--output", "json", "drop", self.name)
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["code"], "NOT_FOUND")

    def test_ttl_and_alter(self):
        qjson("create", self.name, "--dim", 2, "--ttl-seconds", 3600)
        self.assertEqual(qjson("describe", self.name)["ttl_seconds"], 3600)
        qjson("insert", self.name, self.jsonl("r.jsonl", [{"id": 1, "vector": [1, 1]}]))
        self.assertEqual(self.count(), 1)
        self.assertEqual(qjson("alter", self.name, "--ttl-seconds", 1, "--consistency", "session",
                               "--description", "short-lived"),
                         {"ok": True, "collection": self.name})
        d = qjson("describe", self.name)
        self.assertEqual((d["ttl_seconds"], d["consistency"], d["description"]),
                         (1, "session", "short-lived"))
        time.sleep(1.5)
        self.assertEqual(self.count(), 0)
        self.assertEqual(qjson("get", self.name, 1), [])
        rc, out, err = qvctl("alter", self.name)
        self.assertEqual(rc, 2)
        self.assertIn("--ttl-seconds", err)
        rc, out, err = qvctl("alter", self.name, "--consistency", "sometimes")
        self.assertEqual(rc, 1)
        self.assertIn("consistency", out + err)

    def test_help_and_usage_errors(self):
        for cmd in ("query", "insert", "upsert", "import", "search", "partitions",
                    "describe-index", "drop-index", "alter"):
            rc, out, _ = qvctl(cmd, "--help")
            self.assertEqual(rc, 0)
            self.assertTrue(out.startswith("Usage: qvctl " + cmd), out)
        rc, out, _ = qvctl("--help")
        for cmd in ("query NAME", "insert NAME", "partitions NAME", "describe-index NAME",
                    "--output text|json"):
            self.assertIn(cmd, out)
        for args in (("query",), ("insert", "x"), ("query", "x", "--count", "--limit", "3"),
                     ("partitions", "x", "--create", "a", "--drop", "b"), ("--output", "xml", "list"),
                     ("query", "x", "--limit", "0"), ("import", "x", "a.jsonl", "--start-id", "3")):
            rc, _, err = qvctl(*args)
            self.assertEqual(rc, 2, (args, err))


class ProbeTest(unittest.TestCase):
    """qvctl probe URL: the health check docker-compose.yml runs against --metrics."""

    def test_probe(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = Server("--metrics", "127.0.0.1:%d" % port).start()
        try:
            base = "http://127.0.0.1:%d" % port
            for path in ("/readyz", "/healthz"):
                rc, out, err = qvctl("probe", base + path)
                self.assertEqual(rc, 0, (path, out, err))
                self.assertIn(" 200 ", out)
            rc, out, _ = qvctl("--output", "json", "probe", base + "/readyz")
            self.assertEqual((rc, json.loads(out)), (0, {"ok": True, "status": 200}))
            rc, out, _ = qvctl("probe", base + "/nosuch")
            self.assertEqual(rc, 1)
            self.assertIn(" 404 ", out)
        finally:
            server.stop()
            server.cleanup()
        # The server gone: no answer is a failure, saying so
        rc, _, err = qvctl("probe", base + "/readyz")
        self.assertEqual(rc, 1)
        self.assertIn("onnect", err)
        rc, _, err = qvctl("probe")
        self.assertEqual(rc, 2)
        rc, out, _ = qvctl("probe", "--help")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("Usage: qvctl probe URL"), out)


if __name__ == "__main__":
    unittest.main()
