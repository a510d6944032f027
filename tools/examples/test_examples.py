"""The Node stream-processing examples, run against a real nats-server (JetStream) and
quiver: the producer's inserts (core NATS request/reply and JetStream with Nats-Msg-Id,
retries dropped as duplicates) all land exactly once, and the change-feed consumer
rebuilds the collection's id set from the JetStream copy of quiver.cdc.>.

Needs node and the npm packages of tools/examples/package.json, installed by
tools/test.sh into a cache ($QV_NODE_MODULES, default
~/.cache/quiver/node-examples-1/node_modules)."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from qv_server import NatsServer, Server
from quiver import QuiverClient

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
NODE_MODULES = os.environ.get("QV_NODE_MODULES") or os.path.join(
    CACHE, "quiver", "node-examples-1", "node_modules")


class ExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(NODE_MODULES, "@nats-io", "jetstream")):
            raise RuntimeError("npm packages of tools/examples not in %s: tools/test.sh installs "
                               "them (or set QV_NODE_MODULES)" % NODE_MODULES)
        #  ES modules find packages from their own directory: run copies beside a link
        cls.run_dir = tempfile.mkdtemp(prefix="quiver-examples.")
        for name in ("producer.mjs", "cdc_consumer.mjs", "package.json"):
            shutil.copy(os.path.join(HERE, name), cls.run_dir)
        os.symlink(NODE_MODULES, os.path.join(cls.run_dir, "node_modules"))
        cls.nats = NatsServer().start()
        cls.quiver = None

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.quiver:
                cls.quiver.cleanup()
        finally:
            cls.nats.cleanup()
            shutil.rmtree(cls.run_dir, ignore_errors=True)

    def node(self, script, *args):
        p = subprocess.run(["node", os.path.join(self.run_dir, script), "--nats", self.nats.url]
                           + [str(a) for a in args], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, "%s: %s%s" % (script, p.stdout, p.stderr))
        return json.loads(p.stdout.strip().splitlines()[-1])

    def test_producer_and_change_feed(self):
        prefix, coll = "qvex", "events"
        # the change-feed stream first, so that it keeps every event from the start
        self.node("cdc_consumer.mjs", "--stream", "QVEX_CDC", "--create", "--prefix", prefix)
        # the ingest stream must exist before quiver consumes it
        self.node("producer.mjs", "--stream", "QVEX_INGEST", "--stream-subject", "qvexin",
                  "--create-stream")
        type(self).quiver = Server("--nats", self.nats.url, "--nats-prefix", prefix,
                                   "--ingest-stream", "QVEX_INGEST").start()
        c = QuiverClient(uri=self.quiver.endpoint, timeout=30)
        fields = [{"name": "id", "type": "int64", "primary": True, "auto_id": True},
                  {"name": "vector", "type": "float_vector", "dim": 8},
                  {"name": "source", "type": "varchar", "max_length": 16}]
        c.create_collection(coll, schema=fields)

        out = self.node("producer.mjs", "--prefix", prefix, "--collection", coll,
                        "--core-rows", 120, "--stream", "QVEX_INGEST", "--stream-subject",
                        "qvexin", "--stream-rows", 200, "--batch", 50, "--retries", 2)
        self.assertEqual(len(out["core_ids"]), 120)
        self.assertEqual(len(set(out["core_ids"])), 120)
        self.assertEqual(out["stream_published"], 4)          # 200 rows in 4 messages
        self.assertEqual(out["stream_duplicates"], 8)         # 2 retries each, dropped
        # the core inserts were acknowledged once durable: readable at once
        core = c.query(coll, filter='source == "core"', output_fields=["count(*)"])
        self.assertEqual(core, [{"count(*)": 120}])
        # the stream is applied asynchronously: wait for its rows, then check that
        # no more arrive (duplicates would have added rows: ids are auto_id)
        deadline = time.monotonic() + 60
        count = None
        while time.monotonic() < deadline:
            count = c.query(coll, filter='source == "stream"', output_fields=["count(*)"])
            if count == [{"count(*)": 200}]:
                break
            time.sleep(0.1)
        self.assertEqual(count, [{"count(*)": 200}])
        stats = c.stats()
        self.assertEqual(c.query(coll, filter="", output_fields=["count(*)"]),
                         [{"count(*)": 320}], stats)

        # deletes travel on the change feed too
        live = sorted(r["id"] for r in c.query(coll, filter="", limit=16384))
        c.delete(coll, ids=live[:10])
        c.delete(coll, filter='source == "stream" and id < %d' % live[150])
        want = sorted(str(r["id"]) for r in c.query(coll, filter="", limit=16384))
        self.assertLess(len(want), 310)

        # the consumer rebuilds the id set from the stream; the feed is asynchronous,
        # so read again until it has caught up (or the deadline passes)
        deadline = time.monotonic() + 60
        got = None
        while time.monotonic() < deadline:
            got = self.node("cdc_consumer.mjs", "--stream", "QVEX_CDC", "--prefix", prefix,
                            "--collection", coll)
            if got["ids"] == want:
                break
            time.sleep(0.2)
        self.assertEqual(got["ids"], want)
        self.assertEqual(got["repeats"], 0)
        self.assertGreaterEqual(got["events"], 1 + 3 + 4 + 2)   # create, inserts, deletes
        c.close()


if __name__ == "__main__":
    unittest.main()
