"""Online backup and restore against a real quiver: a backup taken under a concurrent
insert load holds exactly the rows acknowledged at or before its snapshot timestamp, and
a restore under a new name gives every one of them back field for field (vectors,
scalars, JSON, nulls, partitions, the index); a damaged or incomplete backup is refused
by name before anything is created; kill -9 in the middle of a backup leaves the source
intact and the partial backup refused; qvctl backup / restore with progress on stderr."""
import json
import os
import shutil
import struct
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import msgpack
import numpy as np

from qv_server import BIN_DIR, Server
from quiver import QuiverClient, QuiverException

DIM = 8
FIELDS = [
    {"name": "id", "type": "int64", "primary": True},
    {"name": "vector", "type": "float_vector", "dim": DIM, "metric": "L2"},
    {"name": "tag", "type": "varchar", "max_length": 32},
    {"name": "n", "type": "int64"},
    {"name": "x", "type": "float"},
    {"name": "doc", "type": "json"},
    {"name": "opt", "type": "int32", "nullable": True},
]
OUT = ["vector", "tag", "n", "x", "doc", "opt"]


def call(c, op, **fields):
    return c._call(op, 300, **fields)


def rows_of(ids, seed):
    rng = np.random.default_rng(seed)
    vecs = rng.random((len(ids), DIM), dtype=np.float32)
    return [{"id": int(i), "vector": [float(v) for v in vecs[k]], "tag": "t%d" % (i % 97),
             "n": int(i) * 3 - 7, "x": float(i) / 7.0, "doc": {"k": int(i) % 5, "s": "v%d" % i},
             "opt": None if i % 4 == 0 else int(i) % 1000}
            for k, i in enumerate(ids)]


def load(c, name, rows):
    """A new collection of FIELDS holding rows."""
    call(c, "create_collection", collection=name, fields=FIELDS)
    for i in range(0, len(rows), 2000):
        call(c, "insert", collection=name, rows=rows[i:i + 2000])


def wait_backup(c, bid, limit_s=300):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        st = call(c, "get_backup_state", backup_id=bid)
        if st["state"] != "executing":
            return st
        time.sleep(0.05)
    raise AssertionError("backup %d still executing" % bid)


def crc32c(data, _table=[]):
    """CRC32C (Castagnoli, reflected), as the envelope's checksums."""
    if not _table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def envelope_open(blob):
    """(kind, version, payload) of a stored object (schemas/qv_envelope.h)."""
    assert blob[:4] == b"QVOB"
    kind, version, length = struct.unpack_from("<HHQ", blob, 4)
    assert len(blob) == 32 + length
    payload = blob[32:]
    assert struct.unpack_from("<I", blob, 24)[0] == crc32c(payload)
    return kind, version, payload


def envelope_seal(kind, version, payload):
    head = b"QVOB" + struct.pack("<HHQII", kind, version, len(payload), 0, 0)
    head += struct.pack("<I", crc32c(payload))
    return head + struct.pack("<I", crc32c(head)) + payload


def qvctl(server, *args, timeout=600):
    env = dict(os.environ, QV_SERVER=server.endpoint)
    return subprocess.run([os.path.join(BIN_DIR, "qvctl")] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout)


class BackupTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--segment-mb", "1").start()
        cls.tmp = tempfile.mkdtemp(prefix="quiver-backup-test.")

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.c = QuiverClient(uri=self.server.endpoint, timeout=300)

    def tearDown(self):
        self.c.close()

    def create(self, name, rows):
        if self.c.has_collection(name):
            self.c.drop_collection(name)
        call(self.c, "create_collection", collection=name, fields=FIELDS,
             enable_dynamic_field=True, description="backup source")
        call(self.c, "create_partition", collection=name, partition="p1")
        for i in range(0, len(rows), 1000):
            part = rows[i:i + 1000]
            if i < 2000:
                call(self.c, "insert", collection=name, partition="p1", rows=part)
            else:
                call(self.c, "insert", collection=name, rows=part)

    def qvctl_ok(self, *args):
        p = qvctl(self.server, *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def get_all(self, name, ids):
        out = {}
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), 5000):
            for r in call(self.c, "get", collection=name, ids=ids[i:i + 5000],
                          output_fields=OUT + ["*"])["rows"]:
                out[r["id"]] = r
        return out

    def count(self, name):
        return call(self.c, "query", collection=name, filter="",
                    output_fields=["count(*)"])["rows"][0]["count(*)"]

    # ------------------------------------------------------------ the round trip
    def test_round_trip_under_inserts(self):
        name, n = "src", 30000
        base = rows_of(range(n), 1)
        for r in base[:50]:
            r["color"] = "red"                          # dynamic field ($meta)
        self.create(name, base)
        call(self.c, "flush", collection=name)           # flushed segments and a growing tail
        call(self.c, "create_index", collection=name, field="vector", index_type="HNSW",
             params={"M": 8, "efConstruction": 64})
        deleted = list(range(0, 3000, 3))
        call(self.c, "delete", collection=name, ids=deleted)
        upserted = rows_of(range(5000, 5100), 2)
        call(self.c, "upsert", collection=name, rows=upserted)
        more = rows_of(range(n, n + 3000), 3)            # unflushed when the backup starts
        call(self.c, "insert", collection=name, rows=more)

        # The load: new keys in batches, and deletes of old keys, each acknowledged with
        # its ts; the rows the deletes take are read first, to compare with the backup's
        pool = list(range(10000, 20000))
        pool_rows = self.get_all(name, pool)
        acked, stop = [], threading.Event()

        def load():
            lc = QuiverClient(uri=self.server.endpoint, timeout=300)
            k, d = 1000000, 0
            while not stop.is_set():
                batch = rows_of(range(k, k + 200), k)
                r = call(lc, "insert", collection=name, rows=batch)
                acked.append((r["ts"], "insert", list(range(k, k + 200))))
                k += 200
                gone = pool[d:d + 50]
                r = call(lc, "delete", collection=name, ids=gone)
                acked.append((r["ts"], "delete", gone))
                d += 50
            lc.close()

        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.5)
        to = os.path.join(self.tmp, "round")
        r = self.c.backup(name, to)                      # the Python client's method
        snap, bid = r["ts"], r["backup_id"]
        st = wait_backup(self.c, bid)
        self.assertEqual(self.c.get_backup_state(bid)["state"], "completed")
        time.sleep(0.3)
        stop.set()
        t.join()
        self.assertEqual(st["state"], "completed", st)
        before = [i for ts, op, ids in acked if ts <= snap and op == "insert" for i in ids]
        after = [i for ts, op, ids in acked if ts > snap and op == "insert" for i in ids]
        gone_before = {i for ts, op, ids in acked if ts <= snap and op == "delete" for i in ids}
        gone_after = {i for ts, op, ids in acked if ts > snap and op == "delete" for i in ids}
        self.assertGreater(len(before), 0, "no insert acknowledged before the snapshot")
        self.assertGreater(len(after), 0, "no insert acknowledged after the snapshot")
        self.assertGreater(len(gone_before), 0, "no delete acknowledged before the snapshot")
        self.assertGreater(len(gone_after), 0, "no delete acknowledged after the snapshot")
        live = sorted(set(range(n + 3000)) - set(deleted) - gone_before) + before
        self.assertEqual(st["rows_done"], len(live))
        self.assertEqual(st["rows_total"], len(live))
        self.assertTrue(os.path.exists(os.path.join(to, "manifest")))

        p = self.qvctl_ok("restore", "--from", to, "--as", "dst")
        self.assertIn("restore 'dst' [", p.stderr)       # the progress bar
        self.assertIn("100%", p.stderr)
        self.assertIn("restored 'dst'", p.stdout)
        self.assertEqual(self.count("dst"), len(live))
        src_rows, dst_rows = self.get_all(name, live), self.get_all("dst", live)
        self.assertEqual(len(dst_rows), len(live))
        for i in gone_after:                             # deleted after the snapshot
            self.assertNotIn(i, src_rows)
            src_rows[i] = pool_rows[i]
        for i in live:
            self.assertEqual(dst_rows[i], src_rows[i], "row %d differs" % i)
        self.assertEqual(dst_rows[5000]["tag"], upserted[0]["tag"])
        self.assertEqual(dst_rows[1]["color"], "red")
        self.assertEqual(self.get_all("dst", after + deleted + sorted(gone_before)), {})
        # Partitions, schema and index came along
        self.assertEqual(call(self.c, "query", collection="dst", filter="",
                              output_fields=["count(*)"], partitions=["p1"])["rows"][0]["count(*)"],
                         2000 - len([d for d in deleted if d < 2000]))
        ds, dd = (call(self.c, "describe_collection", collection=x) for x in (name, "dst"))
        self.assertEqual(dd["fields"], ds["fields"])
        self.assertEqual(dd["description"], "backup source")
        self.assertTrue(dd["enable_dynamic_field"])
        idx = call(self.c, "describe_index", collection="dst", field="vector")
        self.assertEqual((idx["index_type"], idx["params"]["M"]), ("HNSW", 8))
        q = base[4000]["vector"]
        hit = call(self.c, "search", collection="dst", vectors=[q], limit=1)["results"][0][0]
        self.assertEqual(hit["id"], 4000)
        # A second backup into the same directory is refused; the first one stays good
        r = call(self.c, "backup", collection=name, to=to)
        st = wait_backup(self.c, r["backup_id"])
        self.assertEqual(st["state"], "failed")
        self.assertIn("already holds a backup", st["error"])
        self.qvctl_ok("restore", "--from", to, "--as", "dst2")
        self.assertEqual(self.count("dst2"), len(live))

    # ------------------------------------------------------------ damage
    def test_damaged_backup_refused_by_name(self):
        self.create("small", rows_of(range(25000), 4))
        to = os.path.join(self.tmp, "small")
        p = self.qvctl_ok("backup", "small", "--to", to)
        self.assertIn("backup 'small' [", p.stderr)
        self.assertIn("backed up 'small': 25000 rows", p.stdout)
        files = sorted(os.listdir(os.path.join(to, "rows")))
        self.assertEqual(len(files), 4)                  # p1's 2000, then 10000 rows a file

        def damaged(how):
            d = tempfile.mkdtemp(dir=self.tmp)
            shutil.rmtree(d)
            shutil.copytree(to, d)
            how(d)
            return d

        def flip(path, at):
            with open(path, "r+b") as f:
                f.seek(at)
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ 0x40]))

        cases = [
            (lambda d: flip(os.path.join(d, "rows", files[1]), 5000),
             "rows/%s is damaged" % files[1]),
            (lambda d: os.truncate(os.path.join(d, "rows", files[2]), 100),
             "rows/%s is damaged" % files[2]),
            (lambda d: os.remove(os.path.join(d, "rows", files[0])),
             "rows/%s is missing" % files[0]),
            (lambda d: flip(os.path.join(d, "manifest"), 60), "manifest"),
            (lambda d: os.remove(os.path.join(d, "manifest")), "manifest is missing"),
        ]
        for k, (how, needle) in enumerate(cases):
            d = damaged(how)
            p = qvctl(self.server, "restore", "--from", d, "--as", "bad%d" % k)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(needle, p.stderr)
            self.assertIn(d, p.stderr)
            self.assertFalse(self.c.has_collection("bad%d" % k), "created from a damaged backup")
            # --check refuses it the same way, with no server to talk to
            p = subprocess.run([os.path.join(BIN_DIR, "qvctl"), "--server", "tcp://127.0.0.1:1",
                                "restore", "--check", "--from", d], capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(needle, p.stderr)
        p = qvctl(self.server, "restore", "--from", os.path.join(self.tmp, "nothing-here"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing-here", p.stderr)
        # The undamaged one is sound (--check: no server needed, nothing created), and
        # restores
        for args in ((), ("--output", "json")):
            p = subprocess.run([os.path.join(BIN_DIR, "qvctl"), "--server", "tcp://127.0.0.1:1"]
                               + list(args) + ["restore", "--check", "--from", to],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            if args:
                info = json.loads(p.stdout)
                self.assertEqual((info["collection"], info["rows"], info["files"]),
                                 ("small", 25000, 4))
                self.assertEqual(info["bytes"], sum(
                    os.path.getsize(os.path.join(to, "rows", f)) for f in files))
            else:
                self.assertIn("is sound: collection 'small', 25000 rows", p.stdout)
        self.assertFalse(self.c.has_collection("small2"))
        self.qvctl_ok("restore", "--from", to, "--as", "small2")
        self.assertEqual(self.count("small2"), 25000)

    # ------------------------------------------------------------ qvctl and errors
    def test_qvctl_all_help_and_errors(self):
        self.create("a1", rows_of(range(100), 5))
        self.create("a2", rows_of(range(50), 6))
        to = os.path.join(self.tmp, "all")
        p = self.qvctl_ok("backup", "--all", "--to", to)
        self.assertIn("backed up 'a1': 100 rows", p.stdout)
        self.assertIn("backed up 'a2': 50 rows", p.stdout)
        self.c.drop_collection("a2")
        self.qvctl_ok("restore", "--from", os.path.join(to, "a2"))
        self.assertEqual(self.count("a2"), 50)
        p = qvctl(self.server, "restore", "--from", os.path.join(to, "a1"))
        self.assertEqual(p.returncode, 1)                # the name is taken
        self.assertIn("ALREADY_EXISTS", p.stderr)
        for cmd, needle in (("backup", "--to DIR"), ("restore", "--as NEWNAME")):
            p = qvctl(self.server, cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn(needle, p.stdout)
            self.assertIn("server", p.stdout)
        p = qvctl(self.server, "backup", "a1")
        self.assertEqual(p.returncode, 2)                # --to is required
        p = qvctl(self.server, "restore")
        self.assertEqual(p.returncode, 2)
        p = qvctl(self.server, "--help")
        self.assertIn("backup NAME|--all --to DIR", p.stdout)
        # A string primary key and a partition key come back too
        fields = [{"name": "pk", "type": "varchar", "max_length": 16, "primary": True},
                  {"name": "vector", "type": "float_vector", "dim": DIM},
                  {"name": "region", "type": "varchar", "max_length": 8, "partition_key": True}]
        call(self.c, "create_collection", collection="pkc", fields=fields, num_partitions=4)
        rows = [{"pk": "k%d" % i, "vector": [float(i)] * DIM, "region": "r%d" % (i % 5)}
                for i in range(300)]
        call(self.c, "insert", collection="pkc", rows=rows)
        self.qvctl_ok("backup", "pkc", "--to", os.path.join(self.tmp, "pkc"))
        self.qvctl_ok("restore", "--from", os.path.join(self.tmp, "pkc"), "--as", "pkc2")
        keys = ["k%d" % i for i in range(300)]
        a = call(self.c, "get", collection="pkc", ids=keys, output_fields=["vector", "region"])
        b = call(self.c, "get", collection="pkc2", ids=keys, output_fields=["vector", "region"])
        self.assertEqual(len(b["rows"]), 300)
        self.assertEqual(sorted(a["rows"], key=lambda r: r["pk"]),
                         sorted(b["rows"], key=lambda r: r["pk"]))
        da, db = (call(self.c, "describe_collection", collection=x) for x in ("pkc", "pkc2"))
        self.assertEqual((db["fields"], db["num_partitions"]), (da["fields"], da["num_partitions"]))
        with self.assertRaises(QuiverException) as e:
            call(self.c, "backup", collection="nope", to=to)
        self.assertEqual(e.exception.code, "NOT_FOUND")
        with self.assertRaises(QuiverException) as e:
            call(self.c, "backup", collection="a1", to="")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        with self.assertRaises(QuiverException) as e:
            call(self.c, "get_backup_state", backup_id=12345)
        self.assertEqual(e.exception.code, "NOT_FOUND")

    def test_format_1_still_restores(self):
        """Rows files hold float vectors as one bin of float32 (format 2); a backup of
        format 1 (vectors as lists of numbers, as `query` returns them) restores as
        before. The format-1 copy is made here from a format-2 backup, each object
        re-sealed in its envelope, so the restore checks it as any backup."""
        rows = rows_of(range(300), 21)
        self.create("fmt", rows)
        src = os.path.join(self.tmp, "fmt2")
        self.qvctl_ok("backup", "fmt", "--to", src)
        old = os.path.join(self.tmp, "fmt1")
        shutil.copytree(src, old)
        with open(os.path.join(old, "manifest"), "rb") as f:
            kind, version, payload = envelope_open(f.read())
        self.assertEqual(version, 2)
        manifest = msgpack.unpackb(payload, raw=False)
        self.assertEqual(manifest["version"], 2)
        converted = 0
        for entry in manifest["files"]:
            path = os.path.join(old, entry["key"])
            with open(path, "rb") as f:
                k, v, body = envelope_open(f.read())
            self.assertEqual(v, 2)
            doc = msgpack.unpackb(body, raw=False)
            for r in doc["rows"]:
                self.assertIsInstance(r["vector"], bytes)
                self.assertEqual(len(r["vector"]), DIM * 4)
                r["vector"] = [float(x) for x in struct.unpack("<%df" % DIM, r["vector"])]
                converted += 1
            blob = envelope_seal(k, 1, msgpack.packb(doc, use_bin_type=True))
            with open(path, "wb") as f:
                f.write(blob)
            entry["bytes"] = len(blob)
            entry["crc32c"] = crc32c(blob)
        self.assertEqual(converted, 300)
        manifest["version"] = 1
        with open(os.path.join(old, "manifest"), "wb") as f:
            f.write(envelope_seal(kind, 1, msgpack.packb(manifest, use_bin_type=True)))
        p = self.qvctl_ok("restore", "--check", "--from", old)
        self.assertIn("300 rows", p.stdout)
        self.qvctl_ok("restore", "--from", old, "--as", "fmt1")
        self.qvctl_ok("restore", "--from", src, "--as", "fmt2")
        want = self.get_all("fmt", range(300))
        self.assertEqual(len(want), 300)
        self.assertEqual(self.get_all("fmt1", range(300)), want)
        self.assertEqual(self.get_all("fmt2", range(300)), want)

    def test_auto_id_kept(self):
        """A collection whose key the server assigns (auto_id) comes back auto_id, with
        the same keys; new rows then get new keys above them. keep_ids refuses a key
        no server clock could have given."""
        fields = [{"name": "id", "type": "int64", "primary": True, "auto_id": True},
                  {"name": "vector", "type": "float_vector", "dim": DIM},
                  {"name": "n", "type": "int64"}]
        call(self.c, "create_collection", collection="auto", fields=fields)
        ids = call(self.c, "insert", collection="auto",
                   rows=[{"vector": [float(i)] * DIM, "n": i} for i in range(200)])["ids"]
        self.assertEqual(len(ids), 200)
        self.qvctl_ok("backup", "auto", "--to", os.path.join(self.tmp, "auto"))
        self.qvctl_ok("restore", "--from", os.path.join(self.tmp, "auto"), "--as", "auto2")
        d = call(self.c, "describe_collection", collection="auto2")
        self.assertTrue([f for f in d["fields"] if f["name"] == "id"][0].get("auto_id"))
        a = call(self.c, "get", collection="auto", ids=ids, output_fields=["n", "vector"])["rows"]
        b = call(self.c, "get", collection="auto2", ids=ids, output_fields=["n", "vector"])["rows"]
        self.assertEqual(len(b), 200)
        self.assertEqual(sorted(a, key=lambda r: r["id"]), sorted(b, key=lambda r: r["id"]))
        new = call(self.c, "insert", collection="auto2", rows=[{"vector": [0.5] * DIM, "n": -1}])["ids"]
        self.assertGreater(new[0], max(ids))
        # Without keep_ids a key is refused as ever; with it, one from the future is
        with self.assertRaises(QuiverException) as e:
            call(self.c, "insert", collection="auto2", rows=[{"id": 5, "vector": [0.0] * DIM, "n": 0}])
        self.assertIn("auto_id", str(e.exception))
        with self.assertRaises(QuiverException) as e:
            call(self.c, "insert", collection="auto2", keep_ids=True,
                 rows=[{"id": 2 ** 62, "vector": [0.0] * DIM, "n": 0}])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("keep_ids", str(e.exception))
        with self.assertRaises(QuiverException) as e:
            call(self.c, "insert", collection="auto2", keep_ids=True,
                 rows=[{"vector": [0.0] * DIM, "n": 0}])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertEqual(self.count("auto2"), 201)

    def test_ttl_expired_rows_left_out(self):
        """Rows expired (ttl_seconds) at the snapshot are not in the backup."""
        call(self.c, "create_collection", collection="ttl", fields=FIELDS, ttl_seconds=2)
        call(self.c, "insert", collection="ttl", rows=rows_of(range(100), 9))
        time.sleep(2.5)
        call(self.c, "insert", collection="ttl", rows=rows_of(range(100, 130), 9))
        r = call(self.c, "backup", collection="ttl", to=os.path.join(self.tmp, "ttl"))
        self.assertEqual(r["rows_total"], 30)
        self.assertEqual(wait_backup(self.c, r["backup_id"])["rows_done"], 30)

    @unittest.skipUnless(os.environ.get("QV_S3_ENDPOINT"),
                         "QV_S3_ENDPOINT is not set (tools/test.sh starts s3rver and sets it)")
    def test_s3_prefix(self):
        """A backup to an S3 prefix (credentials from the server's environment, as for
        its store) restores from that prefix (qvctl's environment)."""
        for key, default in (("ACCESS", "S3RVER"), ("SECRET", "S3RVER")):
            os.environ["QUIVER_S3_%s_KEY" % key] = os.environ.get("QV_S3_%s_KEY" % key, default)
        server = Server().start()
        try:
            c = QuiverClient(uri=server.endpoint, timeout=300)
            load(c, "s", rows_of(range(12000), 8))
            url = "s3://%s/qv-backup-it/b-%d-%d" % (os.environ["QV_S3_ENDPOINT"], os.getpid(),
                                                    int(time.time() * 1000))
            p = qvctl(server, "backup", "s", "--to", url)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("backed up 's': 12000 rows", p.stdout)
            p = qvctl(server, "restore", "--from", url, "--as", "s2")
            self.assertEqual(p.returncode, 0, p.stderr)
            ids = list(range(0, 12000, 7))
            a = call(c, "get", collection="s", ids=ids, output_fields=OUT)["rows"]
            b = call(c, "get", collection="s2", ids=ids, output_fields=OUT)["rows"]
            self.assertEqual(a, b)
            self.assertEqual(len(b), len(ids))
            c.close()
        finally:
            server.cleanup()


class BackupKillTest(unittest.TestCase):
    """kill -9 in the middle of a backup: the source is intact and serving after a
    restart, the partial backup has no manifest and is refused, a new backup works; a
    server stopped during a backup exits cleanly."""

    def test_kill_during_backup(self):
        os.environ["QV_FAULT_BACKUP_DELAY_MS"] = "400"
        try:
            server = Server().start()
        finally:
            del os.environ["QV_FAULT_BACKUP_DELAY_MS"]
        tmp = tempfile.mkdtemp(prefix="quiver-backup-kill.")
        try:
            c = QuiverClient(uri=server.endpoint, timeout=300)
            rows = rows_of(range(60000), 7)
            load(c, "k", rows)
            to = os.path.join(tmp, "partial")
            bid = call(c, "backup", collection="k", to=to)["backup_id"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                st = call(c, "get_backup_state", backup_id=bid)
                if st["rows_done"] >= 20000:
                    break
                time.sleep(0.05)
            self.assertEqual(st["state"], "executing")
            c.close()
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
            self.assertTrue(os.listdir(os.path.join(to, "rows")))
            self.assertFalse(os.path.exists(os.path.join(to, "manifest")))
            os.environ["QV_FAULT_BACKUP_DELAY_MS"] = "400"
            try:
                server.start()
            finally:
                del os.environ["QV_FAULT_BACKUP_DELAY_MS"]
            c = QuiverClient(uri=server.endpoint, timeout=300)
            # Its state survived the kill: failed, saying why
            st = call(c, "get_backup_state", backup_id=bid)
            self.assertEqual(st["state"], "failed", st)
            self.assertIn("stopped before this backup's end was recorded", st["error"])
            self.assertIn(to, st["error"])
            self.assertEqual(st["collection"], "k")
            self.assertEqual(st["rows_total"], 60000)
            killed = bid
            self.assertEqual(call(c, "query", collection="k", filter="",
                                  output_fields=["count(*)"])["rows"][0]["count(*)"], 60000)
            got = call(c, "get", collection="k", ids=[0, 777, 59999], output_fields=OUT)["rows"]
            want = {r["id"]: r for r in (rows[0], rows[777], rows[59999])}
            for r in got:
                for f in OUT:
                    if f == "vector" or f == "x":
                        np.testing.assert_allclose(r[f], want[r["id"]][f], rtol=1e-6)
                    else:
                        self.assertEqual(r[f], want[r["id"]][f])
            p = qvctl(server, "restore", "--from", to, "--as", "k2")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("manifest is missing", p.stderr)
            self.assertIn("incomplete", p.stderr)
            self.assertIn(to, p.stderr)
            self.assertFalse(c.has_collection("k2"))
            # The same directory takes a new backup, which restores
            bid = call(c, "backup", collection="k", to=to)["backup_id"]
            self.assertEqual(wait_backup(c, bid)["state"], "completed")
            completed = bid
            p = qvctl(server, "restore", "--from", to, "--as", "k2")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(call(c, "query", collection="k2", filter="",
                                  output_fields=["count(*)"])["rows"][0]["count(*)"], 60000)
            # A server stopped (SIGTERM) during a backup stops its writer and exits
            # cleanly (no leak under ASan); that backup has no manifest either
            stopped = os.path.join(tmp, "stopped")
            bid = call(c, "backup", collection="k", to=stopped)["backup_id"]
            deadline = time.monotonic() + 120
            while call(c, "get_backup_state", backup_id=bid)["rows_done"] == 0:
                self.assertLess(time.monotonic(), deadline, "the backup wrote no file in 120 s")
                time.sleep(0.05)
            c.close()
            self.assertEqual(server.stop(), 0)
            self.assertFalse(os.path.exists(os.path.join(stopped, "manifest")))
            states = os.path.join(server.dir, "data", "backup-states")
            self.assertIn("%020d" % completed, os.listdir(states))
            # A record from a clock ahead of this one (planted): new ids go on above it
            ahead = completed + 10 ** 9
            record = {"id": ahead, "collection": "k", "to": "/elsewhere", "ts": 1,
                      "state": "completed", "rows_done": 5, "rows_total": 5, "error": "",
                      "updated_ms": 1}
            with open(os.path.join(states, "%020d" % ahead), "wb") as f:
                f.write(envelope_seal(9, 1, msgpack.packb(record, use_bin_type=True)))
            # After a clean stop and a start, each state is as it ended
            server.start()
            c = QuiverClient(uri=server.endpoint, timeout=300)
            st = call(c, "get_backup_state", backup_id=completed)
            self.assertEqual((st["state"], st["rows_done"], st["rows_total"]),
                             ("completed", 60000, 60000), st)
            self.assertNotIn("error", st)
            st = call(c, "get_backup_state", backup_id=bid)
            self.assertEqual(st["state"], "failed", st)
            self.assertIn("the server is stopping", st["error"])
            self.assertEqual(call(c, "get_backup_state", backup_id=killed)["state"], "failed")
            with self.assertRaises(QuiverException) as e:
                call(c, "get_backup_state", backup_id=12345)
            self.assertEqual(e.exception.code, "NOT_FOUND")
            self.assertIn("last 1000 backups", str(e.exception))
            st = call(c, "get_backup_state", backup_id=ahead)
            self.assertEqual((st["state"], st["rows_done"]), ("completed", 5))
            # A new id is above every recorded one
            nid = call(c, "backup", collection="k", to=os.path.join(tmp, "after"))["backup_id"]
            self.assertGreater(nid, ahead)
            self.assertEqual(wait_backup(c, nid)["state"], "completed")
            c.close()
        finally:
            server.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
