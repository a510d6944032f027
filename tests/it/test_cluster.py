"""tools/cluster.sh against real processes: a nats-server with JetStream (started here),
then `cluster.sh up` with a writer (its reads go to the searchers) and two searcher
processes on one data directory; rows inserted through the writer's API, the same
search answers through the writer and on every searcher, kill -9 of a searcher (the
writer's reads still answered, by the other) and `cluster.sh start` again (it rejoins
and sees every row, also those written while it was down), `status`, the refusals (`up` on a live DIR,
`start` of a running role, a pid file naming someone else's process), a failing `up`,
and `down`: every process gone, no sanitizer report in any log. `up --proxy
--ingest-stream` with the Node producer of tools/examples feeding the stream (when its
npm packages are installed, as tools/test.sh does). With the S3 test server
(QV_S3_ENDPOINT), the same on S3: an HNSW index built by the writer and loaded by the
searchers from the bucket, a searcher killed and started again.

Run by ctest (py_test_cluster) with QV_BIN_DIR set to the build directory."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import numpy as np

from qv_server import BIN_DIR, ROOT, NatsServer, free_port
from quiver import QuiverClient

CLUSTER = os.path.join(ROOT, "tools", "cluster.sh")
CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
NODE_MODULES = os.environ.get("QV_NODE_MODULES") or os.path.join(
    CACHE, "quiver", "node-examples-1", "node_modules")
QUIVER = os.path.join(BIN_DIR, "quiver")
TIMEOUT = "180"         # seconds a role may take to answer ping (ASan build, loaded CI)
DIM = 16

NATS = None


def setUpModule():
    global NATS
    NATS = NatsServer().start()


def tearDownModule():
    NATS.cleanup()


def cluster(*args):
    """Runs tools/cluster.sh; returns the CompletedProcess (text, captured)."""
    return subprocess.run([CLUSTER] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=600)


def is_quiver_running(pid):
    """True if pid is a live (not zombie) process whose argv[0] names quiver."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X") and os.path.basename(argv0) == b"quiver"


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="quiver-cluster-test.")
        self.dir = os.path.join(self.tmp, "c")
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        if os.path.isdir(os.path.join(self.dir, "cmd")):
            cluster("down", self.dir, "--timeout", "30")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ok(self, *args):
        p = cluster(*args)
        self.assertEqual(p.returncode, 0, "cluster.sh %s: exit %d\n%s%s"
                         % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p

    def read(self, *parts):
        with open(os.path.join(self.dir, *parts)) as f:
            return f.read().strip()

    def pid(self, role):
        return int(self.read("pids", role + ".pid"))

    def client(self, role):
        c = QuiverClient(uri=self.read("endpoints", role), timeout=60)
        self.clients.append(c)
        return c

    def up(self, searchers=2, *extra):
        api = "tcp://127.0.0.1:%d" % free_port()
        args = ["up", self.dir, "--nats", NATS.url, "--api", api, "--searchers", searchers,
                "--quiver", QUIVER, "--timeout", TIMEOUT]
        if extra:
            args += ["--"] + list(extra)
        return api, cluster(*args)

    def assert_routed(self, roles):
        """The writer's stats list each role's endpoint with the incarnation the role's
        own stats report, routed."""
        table = self.client("writer").stats()["searcher_processes"]
        by_endpoint = {e["endpoint"]: e for e in table}
        for r in roles:
            own = self.client(r).stats()
            self.assertEqual(own["role"], "searcher", r)
            entry = by_endpoint.get(self.read("endpoints", r))
            self.assertIsNotNone(entry, "%s not in the writer's table %s" % (r, table))
            self.assertEqual(entry["instance"], own["instance"], r)
            self.assertTrue(entry["routed"] and entry["caught_up"], entry)
            self.assertLess(entry["heard_ms_ago"], 3500, entry)

    def assert_no_sanitizer_report(self):
        for name in os.listdir(os.path.join(self.dir, "logs")):
            with open(os.path.join(self.dir, "logs", name), errors="replace") as f:
                text = f.read()
            for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                self.assertNotIn(marker, text, "%s in %s:\n%s" % (marker, name, text[-3000:]))

    def test_help_and_usage(self):
        for sub in ([], ["up"], ["start"], ["down"], ["status"]):
            p = cluster(*(sub + ["--help"]))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("Usage: tools/cluster.sh", p.stdout)
        self.assertEqual(cluster().returncode, 2)
        p = cluster("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", p.stderr)
        p = cluster("up", self.dir, "--api", "tcp://127.0.0.1:1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--nats URL is required", p.stderr)
        p = cluster("up", self.dir, "--nats", NATS.url, "--api", "127.0.0.1:1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("expected tcp://HOST:PORT", p.stderr)
        p = cluster("up", self.dir, "--nats", NATS.url, "--api", "tcp://127.0.0.1:1",
                    "--searchers", "many")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--searchers many", p.stderr)
        p = cluster("status", os.path.join(self.tmp, "nothing"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("holds no cluster", p.stderr)

    def test_failed_up_leaves_nothing_running(self):
        # quiver refuses the option: the writer exits at once, up says so with its log
        _api, p = self.up(1, "--no-such-option")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("writer exited with status", p.stderr)
        self.assertIn("since its start", p.stderr)
        self.assertIn("no-such-option", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "cmd", "searcher-1")))
        self.assertEqual(os.listdir(os.path.join(self.dir, "pids")), [])

    def test_cluster_lifecycle(self):
        api, p = self.up(2)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        roles = ["writer", "searcher-1", "searcher-2"]
        pids = {r: self.pid(r) for r in roles}
        for r in roles:
            self.assertTrue(is_quiver_running(pids[r]), r)
            self.assertTrue(os.path.getsize(os.path.join(self.dir, "logs", r + ".log")) > 0)
        self.assertEqual(self.read("endpoints", "writer"), api)
        self.assertEqual(len(set(self.read("endpoints", r) for r in roles)), 3)
        cmd = self.read("cmd", "searcher-1").split("\n")
        self.assertEqual(cmd[:4], [QUIVER, "serve", "--roles", "searcher"])
        self.assertEqual(self.read("cmd", "writer").split("\n")[:4],
                         [QUIVER, "serve", "--roles", "proxy,segment-manager,meta,flusher"])
        self.assertIn(os.path.join(self.dir, "data"), cmd)
        st = self.ok("status", self.dir).stdout
        self.assertEqual(st.count("serving"), 3, st)
        # the writer's stats list both searcher processes, as the incarnations running,
        # routed (what `up` waited for)
        self.assert_routed(["searcher-1", "searcher-2"])

        # up again on a live DIR is refused, and starts nothing
        p = cluster("up", self.dir, "--nats", NATS.url, "--api",
                    "tcp://127.0.0.1:%d" % free_port(), "--quiver", QUIVER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("still runs", p.stderr)
        self.assertEqual({r: self.pid(r) for r in roles}, pids)

        # rows through the writer; every searcher gives the writer's (exact) answer
        writer = self.client("writer")
        writer.create_collection("c", dimension=DIM, metric_type="L2")
        rng = np.random.default_rng(7)
        vecs = rng.random((3000, DIM), dtype=np.float32)
        got = writer.insert("c", {"id": np.arange(2000), "vector": vecs[:2000]})
        self.assertEqual(got["insert_count"], 2000)
        queries = rng.random((5, DIM), dtype=np.float32)

        def ids_of(client):
            res = client.search("c", data=queries, limit=10, consistency_level="Strong")
            return [[h["id"] for h in hits] for hits in res]

        def exact(n):
            d = ((vecs[:n][None, :, :] - queries[:, None, :]) ** 2).sum(-1)
            return [list(map(int, np.argsort(row, kind="stable")[:10])) for row in d]

        expect = exact(2000)
        self.assertEqual(ids_of(writer), expect)
        searchers = {r: self.client(r) for r in ("searcher-1", "searcher-2")}
        for r, c in searchers.items():
            self.assertEqual(ids_of(c), expect, r)
            self.assertEqual(c.query("c", output_fields=["count(*)"],
                                     consistency_level="Strong"), [{"count(*)": 2000}], r)

        # kill -9 searcher-1; status says so; rows written meanwhile; start it again
        os.kill(pids["searcher-1"], 9)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and is_quiver_running(pids["searcher-1"]):
            time.sleep(0.05)
        self.assertFalse(is_quiver_running(pids["searcher-1"]))
        p = cluster("status", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout, r"searcher-1\s+%d\s+stopped" % pids["searcher-1"])
        writer.insert("c", {"id": np.arange(2000, 3000), "vector": vecs[2000:]})
        # the writer's reads go to the searcher still running
        expect = exact(3000)
        self.assertEqual(writer.query("c", output_fields=["count(*)"], consistency_level="Strong"),
                         [{"count(*)": 3000}])
        self.assertEqual(ids_of(writer), expect)
        p = self.ok("start", self.dir, "searcher-1", "--timeout", TIMEOUT)
        self.assertIn("searcher-1: answers ping", p.stdout)
        new_pid = self.pid("searcher-1")
        self.assertNotEqual(new_pid, pids["searcher-1"])
        self.assertTrue(is_quiver_running(new_pid))
        pids["searcher-1"] = new_pid
        self.assertEqual(self.read("cmd", "searcher-1").split("\n"), cmd)   # same command
        self.assert_routed(["searcher-1", "searcher-2"])    # searcher-1: its new incarnation
        s1 = QuiverClient(uri=self.read("endpoints", "searcher-1"), timeout=60)
        self.clients.append(s1)
        self.assertEqual(s1.query("c", output_fields=["count(*)"], consistency_level="Strong"),
                         [{"count(*)": 3000}])
        for c in (writer, s1, searchers["searcher-2"]):
            self.assertEqual(ids_of(c), expect)
        self.assertEqual(self.ok("status", self.dir).stdout.count("serving"), 3)

        # start of a running role is refused
        p = cluster("start", self.dir, "searcher-2")
        self.assertEqual(p.returncode, 1)
        self.assertIn("still runs", p.stderr)

        # a pid file naming another process: down leaves that process alone
        sleeper = subprocess.Popen(["sleep", "300"])
        try:
            with open(os.path.join(self.dir, "pids", "searcher-3.pid"), "w") as f:
                f.write("%d\n" % sleeper.pid)
            shutil.copy(os.path.join(self.dir, "cmd", "searcher-2"),
                        os.path.join(self.dir, "cmd", "searcher-3"))
            shutil.copy(os.path.join(self.dir, "endpoints", "searcher-2"),
                        os.path.join(self.dir, "endpoints", "searcher-3"))
            p = self.ok("down", self.dir, "--timeout", "60")
            self.assertIsNone(sleeper.poll(), "down signalled a process that is not its own")
            self.assertIn("searcher-3: not running", p.stdout)
        finally:
            sleeper.kill()
            sleeper.wait()
        self.assertIn("writer: stopped", p.stdout)
        self.assertLess(p.stdout.index("searcher-2: stopped"), p.stdout.index("writer: SIGTERM"))
        self.assertNotIn("SIGKILL", p.stdout + p.stderr)
        for r, pid in pids.items():
            self.assertFalse(is_quiver_running(pid), r)
        self.assertEqual(os.listdir(os.path.join(self.dir, "pids")), [])
        self.assert_no_sanitizer_report()
        # the logs say each role stopped on SIGTERM
        for r in roles:
            with open(os.path.join(self.dir, "logs", r + ".log")) as f:
                self.assertIn("quiver stopped", f.read().rsplit("starting", 1)[-1], r)

    def test_cluster_with_proxy(self):
        """--proxy: the writer as the core and a proxy process bound to --api, which
        finds the core in NATS; rows
        through the proxy, read back on every searcher; kill -9 of the core and of the
        proxy, each started again with `start`, every row still there; `down`."""
        api = "tcp://127.0.0.1:%d" % free_port()
        p = cluster("up", self.dir, "--nats", NATS.url, "--api", api, "--searchers", 2,
                    "--proxy", "--quiver", QUIVER, "--timeout", TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        roles = ["core", "proxy", "searcher-1", "searcher-2"]
        for r in roles:
            self.assertTrue(is_quiver_running(self.pid(r)), r)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "cmd", "writer")))
        self.assertEqual(self.read("endpoints", "proxy"), api)
        self.assertEqual(self.read("cmd", "core").split("\n")[:4],
                         [QUIVER, "serve", "--roles", "segment-manager,meta,flusher"])
        # the proxy finds the core in NATS (no --writer)
        self.assertEqual(self.read("cmd", "proxy").split("\n")[:6],
                         [QUIVER, "serve", "--roles", "proxy", "--nats", NATS.url])
        st = self.ok("status", self.dir).stdout
        self.assertEqual(st.count("serving"), 4, st)
        proxy = self.client("proxy")
        stats = proxy.stats()
        self.assertEqual(stats["role"], "proxy")
        self.assertEqual(sorted(e["endpoint"] for e in stats["searcher_processes"]),
                         sorted(self.read("endpoints", r) for r in ("searcher-1", "searcher-2")))
        proxy.create_collection("c", dimension=DIM, metric_type="L2")
        rng = np.random.default_rng(11)
        vecs = rng.random((2000, DIM), dtype=np.float32)
        self.assertEqual(proxy.insert("c", {"id": np.arange(1000), "vector": vecs[:1000]})
                         ["insert_count"], 1000)
        for r in ("searcher-1", "searcher-2"):
            got = self.client(r).query("c", filter="", output_fields=["count(*)"],
                                       consistency_level="Strong")
            self.assertEqual(got[0]["count(*)"], 1000, r)
        # kill -9 of the core: started again, it serves the same proxy
        os.kill(self.pid("core"), 9)
        self.ok("start", self.dir, "core", "--timeout", TIMEOUT)
        self.assertEqual(proxy.insert("c", {"id": np.arange(1000, 2000), "vector": vecs[1000:]})
                         ["insert_count"], 1000)
        # kill -9 of the proxy: started again on --api, it takes the core's catalog
        os.kill(self.pid("proxy"), 9)
        self.ok("start", self.dir, "proxy", "--timeout", TIMEOUT)
        again = self.client("proxy")
        got = again.query("c", filter="", output_fields=["count(*)"], consistency_level="Strong")
        self.assertEqual(got[0]["count(*)"], 2000)
        res = again.search("c", data=vecs[1500:1501], limit=1, consistency_level="Strong")
        self.assertEqual(res[0][0]["id"], 1500)
        pids = {r: self.pid(r) for r in roles}
        self.ok("down", self.dir)
        for r in roles:
            self.assertFalse(is_quiver_running(pids[r]), r)
        self.assert_no_sanitizer_report()

    def test_cluster_with_meta(self):
        """--proxy --meta: every role its own process (proxy, segment manager, meta +
        flusher, two searchers); rows flushed by the meta process and read back on
        every searcher; kill -9 of the meta process, rows inserted and flushed meanwhile
        (the flush waits for the restarted one), every row still there; `down`."""
        api = "tcp://127.0.0.1:%d" % free_port()
        p = cluster("up", self.dir, "--nats", NATS.url, "--api", api, "--searchers", 2,
                    "--proxy", "--meta", "--quiver", QUIVER, "--timeout", TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        roles = ["core", "meta", "proxy", "searcher-1", "searcher-2"]
        for r in roles:
            self.assertTrue(is_quiver_running(self.pid(r)), r)
        self.assertEqual(self.read("cmd", "core").split("\n")[:4],
                         [QUIVER, "serve", "--roles", "segment-manager"])
        self.assertEqual(self.read("cmd", "meta").split("\n")[:4],
                         [QUIVER, "serve", "--roles", "meta,flusher"])
        st = self.ok("status", self.dir).stdout
        self.assertEqual(st.count("serving"), 5, st)
        self.assertEqual(self.client("meta").stats()["role"], "meta")
        proxy = self.client("proxy")
        proxy.create_collection("c", dimension=DIM, metric_type="L2")
        rng = np.random.default_rng(12)
        vecs = rng.random((2000, DIM), dtype=np.float32)
        self.assertEqual(proxy.insert("c", {"id": np.arange(1000), "vector": vecs[:1000]})
                         ["insert_count"], 1000)
        proxy.flush("c")
        self.assertEqual(proxy.stats()["unflushed_segments"], 0)
        os.kill(self.pid("meta"), 9)
        self.assertEqual(proxy.insert("c", {"id": np.arange(1000, 2000), "vector": vecs[1000:]})
                         ["insert_count"], 1000)
        self.ok("start", self.dir, "meta", "--timeout", TIMEOUT)
        proxy.flush("c")
        self.assertEqual(proxy.stats()["unflushed_segments"], 0)
        for r in ("searcher-1", "searcher-2"):
            got = self.client(r).query("c", filter="", output_fields=["count(*)"],
                                       consistency_level="Strong")
            self.assertEqual(got[0]["count(*)"], 2000, r)
        res = proxy.search("c", data=vecs[1500:1501], limit=1, consistency_level="Strong")
        self.assertEqual(res[0][0]["id"], 1500)
        pids = {r: self.pid(r) for r in roles}
        self.ok("down", self.dir)
        for r in roles:
            self.assertFalse(is_quiver_running(pids[r]), r)
        self.assert_no_sanitizer_report()

    @unittest.skipUnless(os.path.isdir(os.path.join(NODE_MODULES, "@nats-io", "jetstream")),
                         "the npm packages of tools/examples are not installed "
                         "(tools/test.sh installs them and sets QV_NODE_MODULES)")
    def test_cluster_ingest_stream(self):
        """`up --proxy --ingest-stream NAME`: the option goes to the proxy only, which
        consumes the stream (made and fed by tools/examples/producer.mjs): every row
        published arrives once, readable through the proxy and on the searcher."""
        run_dir = os.path.join(self.tmp, "node")
        os.mkdir(run_dir)
        for name in ("producer.mjs", "package.json"):
            shutil.copy(os.path.join(ROOT, "tools", "examples", name), run_dir)
        os.symlink(NODE_MODULES, os.path.join(run_dir, "node_modules"))

        def producer(*args):
            p = subprocess.run(["node", os.path.join(run_dir, "producer.mjs"), "--nats", NATS.url]
                               + [str(a) for a in args], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            return json.loads(p.stdout.strip().splitlines()[-1])

        producer("--stream", "QVCL_INGEST", "--stream-subject", "qvclin", "--create-stream")
        api = "tcp://127.0.0.1:%d" % free_port()
        self.ok("up", self.dir, "--nats", NATS.url, "--api", api, "--searchers", 1, "--proxy",
                "--ingest-stream", "QVCL_INGEST", "--quiver", QUIVER, "--timeout", TIMEOUT)
        self.assertIn("--ingest-stream\nQVCL_INGEST", self.read("cmd", "proxy"))
        self.assertNotIn("--ingest-stream", self.read("cmd", "core"))
        self.assertNotIn("--ingest-stream", self.read("cmd", "searcher-1"))
        proxy = self.client("proxy")
        fields = [{"name": "id", "type": "int64", "primary": True, "auto_id": True},
                  {"name": "vector", "type": "float_vector", "dim": 8},
                  {"name": "source", "type": "varchar", "max_length": 16}]
        proxy.create_collection("ev", schema=fields)
        out = producer("--collection", "ev", "--core-rows", 0, "--stream", "QVCL_INGEST",
                       "--stream-subject", "qvclin", "--stream-rows", 300, "--batch", 50)
        self.assertEqual(out["stream_published"], 6)
        deadline = time.monotonic() + 60
        got = None
        while time.monotonic() < deadline:
            got = proxy.query("ev", filter="", output_fields=["count(*)"],
                              consistency_level="Strong")
            if got == [{"count(*)": 300}]:
                break
            time.sleep(0.2)
        self.assertEqual(got, [{"count(*)": 300}])
        self.assertTrue(proxy.stats()["ingest_leading"])
        got = self.client("searcher-1").query("ev", filter="", output_fields=["count(*)"],
                                              consistency_level="Strong")
        self.assertEqual(got, [{"count(*)": 300}])
        self.ok("down", self.dir)
        self.assert_no_sanitizer_report()

    @unittest.skipUnless(os.environ.get("QV_S3_ENDPOINT"),
                         "QV_S3_ENDPOINT is not set (tools/test.sh starts s3rver and sets it)")
    def test_cluster_on_s3(self):
        """The same topology with every object in the S3 test server (the options after
        `--` go to every role; credentials from the environment of `up` and `start`):
        the searchers follow the writer's WAL and load its index objects from the bucket,
        a searcher killed with -9 and started again catches up from it."""
        for name, default in (("ACCESS", "S3RVER"), ("SECRET", "S3RVER")):
            os.environ["QUIVER_S3_%s_KEY" % name] = os.environ.get("QV_S3_%s_KEY" % name, default)
        prefix = "cluster-%d-%d" % (os.getpid(), int(time.time() * 1000))
        api, p = self.up(2, "--s3-endpoint", os.environ["QV_S3_ENDPOINT"], "--s3-bucket", "qv-it",
                         "--s3-prefix", prefix)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_routed(["searcher-1", "searcher-2"])
        writer = self.client("writer")
        self.assertEqual(writer.stats()["store"], "s3")
        writer.create_collection("c", dimension=DIM, metric_type="L2")
        rng = np.random.default_rng(11)
        vecs = rng.random((2500, DIM), dtype=np.float32)
        writer.insert("c", {"id": np.arange(2000), "vector": vecs[:2000]})
        writer.flush("c")
        ip = writer.prepare_index_params()
        ip.add_index(field_name="vector", index_type="HNSW",
                     params={"M": 16, "efConstruction": 100})
        writer.create_index("c", ip)
        searchers = {r: self.client(r) for r in ("searcher-1", "searcher-2")}
        # each searcher loads the writer's index object from the bucket (not rebuilt)
        deadline = time.monotonic() + 120
        adopted = {}
        while time.monotonic() < deadline:
            adopted = {r: c.stats().get("indexes_adopted", 0) for r, c in searchers.items()}
            if all(n >= 1 for n in adopted.values()):
                break
            time.sleep(0.2)
        self.assertTrue(all(n >= 1 for n in adopted.values()), adopted)
        for r, c in searchers.items():
            st = c.stats()
            self.assertEqual(st["store"], "s3", r)
            self.assertEqual(c.describe_index("c", "vector")["indexed_rows"], 2000, r)
        queries = rng.random((5, DIM), dtype=np.float32)

        def answers(client):
            res = client.search("c", data=queries, limit=10, consistency_level="Strong")
            return [[(h["id"], h["distance"]) for h in hits] for hits in res]

        # the writer's reads are served by a searcher: every answer is the same, and
        # the index finds the exact neighbours (recall@10 against numpy's)
        expect = answers(writer)
        for r, c in searchers.items():
            self.assertEqual(answers(c), expect, r)
        d = ((vecs[:2000][None, :, :] - queries[:, None, :]) ** 2).sum(-1)
        exact = [set(np.argsort(row, kind="stable")[:10].tolist()) for row in d]
        hits = sum(len(exact[i] & {h[0] for h in expect[i]}) for i in range(5))
        self.assertGreaterEqual(hits, 45, (expect, exact))
        # kill -9 searcher-2; rows written meanwhile; started again, it catches up
        pid = self.pid("searcher-2")
        os.kill(pid, 9)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and is_quiver_running(pid):
            time.sleep(0.05)
        self.assertFalse(is_quiver_running(pid))
        writer.insert("c", {"id": np.arange(2000, 2500), "vector": vecs[2000:]})
        self.ok("start", self.dir, "searcher-2", "--timeout", TIMEOUT)
        self.assert_routed(["searcher-1", "searcher-2"])
        s2 = QuiverClient(uri=self.read("endpoints", "searcher-2"), timeout=60)
        self.clients.append(s2)
        expect = answers(writer)
        for c in (s2, searchers["searcher-1"]):
            self.assertEqual(c.query("c", output_fields=["count(*)"], consistency_level="Strong"),
                             [{"count(*)": 2500}])
            self.assertEqual(answers(c), expect)
        self.ok("down", self.dir, "--timeout", "60")
        self.assert_no_sanitizer_report()


if __name__ == "__main__":
    unittest.main()
