"""An encrypted API (quiver serve --curve-secret-key, ZeroMQ CURVE) against a real
server: keys from `quiver keygen`; QuiverClient and qvctl with the server's public key
work; a client without it, or with another server's, gets no answer (the handshake
fails) and reports TIMEOUT; a key that is not one is refused at once. With
--curve-clients, only the client key pairs the list names are admitted, and the list
is read again when it changes."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

import numpy as np
import zmq
import zmq.auth

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quiver import QuiverClient, QuiverException  # noqa: E402
from qv_server import BIN_DIR, Server  # noqa: E402

SERVER = None
KEYS = None


def keygen(path):
    """quiver keygen PATH: the public key it prints."""
    out = subprocess.run([os.path.join(BIN_DIR, "quiver"), "keygen", path], check=True,
                         capture_output=True, text=True).stdout
    return out.strip()


def setUpModule():
    global SERVER, KEYS
    KEYS = tempfile.mkdtemp(prefix="quiver-curve.")
    public = keygen(os.path.join(KEYS, "server"))
    SERVER = Server("--curve-secret-key", os.path.join(KEYS, "server_secret"),
                    server_key=public).start()
    SERVER.public = public


def tearDownModule():
    SERVER.cleanup()
    shutil.rmtree(KEYS, ignore_errors=True)


class CurveTest(unittest.TestCase):
    def test_keygen_files(self):
        self.assertEqual(len(SERVER.public), 40)
        mode = os.stat(os.path.join(KEYS, "server_secret")).st_mode & 0o777
        self.assertEqual(mode, 0o600)
        with open(os.path.join(KEYS, "server")) as f:
            public = f.read()
        self.assertIn(SERVER.public, public)
        self.assertNotIn("secret-key", public)

    def test_client_with_key(self):
        c = QuiverClient(uri=SERVER.endpoint, timeout=30, server_key=SERVER.public)
        c.create_collection("enc", dimension=4)
        vecs = np.eye(4, dtype=np.float32)
        c.insert("enc", [{"id": i, "vector": vecs[i]} for i in range(4)])
        hits = c.search("enc", [vecs[2]], limit=1)
        self.assertEqual(hits[0][0]["id"], 2)
        c.close()

    def test_without_or_with_wrong_key(self):
        other = keygen(os.path.join(KEYS, "other"))
        for key in (None, other):
            c = QuiverClient(uri=SERVER.endpoint, timeout=1.5, server_key=key)
            with self.assertRaises(QuiverException) as e:
                c.list_collections()
            self.assertEqual(e.exception.code, "TIMEOUT")
            c.close()
        with self.assertRaises(QuiverException) as e:
            QuiverClient(uri=SERVER.endpoint, server_key="short")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")

    def test_qvctl(self):
        qvctl = os.path.join(BIN_DIR, "qvctl")
        env = dict(os.environ, QV_SERVER=SERVER.endpoint)
        env.pop("QV_SERVER_KEY", None)
        # the key itself, the public key file, and $QV_SERVER_KEY
        for args, extra_env in ((["--server-key", SERVER.public], {}),
                                (["--server-key", os.path.join(KEYS, "server")], {}),
                                ([], {"QV_SERVER_KEY": SERVER.public})):
            p = subprocess.run([qvctl, "--timeout", "30"] + args + ["ping"],
                               env=dict(env, **extra_env), capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("answers quiver/", p.stdout)
        p = subprocess.run([qvctl, "--timeout", "2", "ping"], env=env, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("server key", p.stderr)
        p = subprocess.run([qvctl, "--server-key", "/nonexistent", "ping"], env=env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--server-key", p.stderr)

    def test_bad_key_file_refused_at_start(self):
        # the public half alone (beside its secret file, czmq would read that instead)
        os.makedirs(os.path.join(KEYS, "alone"), exist_ok=True)
        shutil.copy(os.path.join(KEYS, "server"), os.path.join(KEYS, "alone", "server"))
        p = subprocess.run([os.path.join(BIN_DIR, "quiver"), "serve", "--data",
                            os.path.join(KEYS, "d"), "--curve-secret-key",
                            os.path.join(KEYS, "alone", "server"), "--check-config"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a secret key file", p.stderr)


def public_line(path):
    """The public-key line of a public key file of `quiver keygen`."""
    with open(path) as f:
        return [line for line in f if "public-key" in line][0]


def answers(client_key, timeout=1.5):
    """Whether LISTED answers a client with the pair of the secret file client_key
    (None: a new pair): True, or False on TIMEOUT."""
    c = QuiverClient(uri=LISTED.endpoint, timeout=timeout, server_key=LISTED.public,
                     client_key=client_key)
    try:
        c.list_collections()
        return True
    except QuiverException as e:
        if e.code != "TIMEOUT":
            raise
        return False
    finally:
        c.close()


LISTED = None


class ListedClientsTest(unittest.TestCase):
    """quiver serve --curve-clients LIST: alice's pair is listed, bob's is not."""

    @classmethod
    def setUpClass(cls):
        global LISTED
        cls.dir = os.path.join(KEYS, "listed")
        os.makedirs(cls.dir)
        public = keygen(os.path.join(cls.dir, "server"))
        cls.alice_public = keygen(os.path.join(cls.dir, "alice"))
        cls.bob = keygen(os.path.join(cls.dir, "bob"))
        cls.alice = os.path.join(cls.dir, "alice_secret")
        cls.bob_secret = os.path.join(cls.dir, "bob_secret")
        cls.list = os.path.join(cls.dir, "clients")
        # alice's public file as keygen wrote it (comments, sections and all)
        shutil.copy(os.path.join(cls.dir, "alice"), cls.list)
        pair = zmq.auth.load_certificate(cls.alice)
        LISTED = Server("--curve-secret-key", os.path.join(cls.dir, "server_secret"),
                        "--curve-clients", cls.list, server_key=public,
                        client_pair=pair).start()
        LISTED.public = public

    @classmethod
    def tearDownClass(cls):
        LISTED.cleanup()

    def log(self):
        with open(os.path.join(LISTED.dir, "server.log"), errors="replace") as f:
            return f.read()

    def refusals(self):
        """The refusals the log names so far (each key's first, and every 100th)."""
        return self.log().count("is not in --curve-clients")

    def wait_until(self, client_key, want):
        """Polls until LISTED answers client_key (want True) or refuses it (False)."""
        deadline = time.monotonic() + 30
        got = answers(client_key)
        while got != want and time.monotonic() < deadline:
            time.sleep(0.2)
            got = answers(client_key)
        self.assertEqual(got, want)

    def assert_refused(self, client_key, public=None):
        """LISTED gives client_key's pair no answer, and its log says it refused it
        (naming public, when given): not merely a slow server."""
        before = self.refusals()
        self.assertFalse(answers(client_key))
        deadline = time.monotonic() + 10
        while self.refusals() == before and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertGreater(self.refusals(), before)
        if public:
            self.assertIn("whose CURVE key %s is not in --curve-clients" % public, self.log())

    def test_1_listed_and_unlisted(self):
        c = QuiverClient(uri=LISTED.endpoint, timeout=30, server_key=LISTED.public,
                         client_key=self.alice)
        c.create_collection("listed", dimension=2)
        c.insert("listed", [{"id": 1, "vector": [1.0, 0.0]}])
        self.assertEqual(c.search("listed", [[1.0, 0.0]], limit=1)[0][0]["id"], 1)
        c.close()
        self.assert_refused(self.bob_secret, self.bob)
        self.assert_refused(None)               # a new pair of its own
        # qvctl: --client-key, and $QV_CLIENT_KEY
        qvctl = os.path.join(BIN_DIR, "qvctl")
        env = dict(os.environ, QV_SERVER=LISTED.endpoint, QV_SERVER_KEY=LISTED.public)
        env.pop("QV_CLIENT_KEY", None)
        for args, extra in ((["--client-key", self.alice], {}), ([], {"QV_CLIENT_KEY": self.alice})):
            p = subprocess.run([qvctl, "--timeout", "30"] + args + ["ping"],
                               env=dict(env, **extra), capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([qvctl, "--timeout", "2", "--client-key", self.bob_secret, "ping"],
                           env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("client's key admitted", p.stderr)
        p = subprocess.run([qvctl, "--client-key", "/nonexistent", "ping"], env=env,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a secret key file", p.stderr)
        p = subprocess.run([qvctl, "--client-key", self.alice, "ping"],
                           env=dict(env, QV_SERVER_KEY=""), capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--server-key", p.stderr)

    def test_2_list_read_again(self):
        # bob added without a restart; a broken list then keeps the keys read before
        with open(self.list, "a") as f:
            f.write("# bob, added later\n" + public_line(os.path.join(self.dir, "bob")))
        self.wait_until(self.bob_secret, True)
        with open(self.list, "a") as f:
            f.write("not a key\n")
        self.wait_until(self.bob_secret, True)
        self.assertTrue(answers(self.alice, timeout=30))
        self.assertRegex(self.log(), r"line \d+ is not a client's public key")
        # alice withdrawn: her next connection is refused
        with open(self.list, "w") as f:
            f.write(public_line(os.path.join(self.dir, "bob")))
        self.wait_until(self.alice, False)
        self.assertIn("whose CURVE key %s is not in --curve-clients" % self.alice_public,
                      self.log())
        self.assertTrue(answers(self.bob_secret, timeout=30))

    def test_client_key_refused_at_once(self):
        with mock.patch.dict(os.environ):
            os.environ.pop("QV_SERVER_KEY", None)
            with self.assertRaises(QuiverException) as e:
                QuiverClient(uri=LISTED.endpoint, client_key=self.alice)
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        alone = os.path.join(self.dir, "alone")
        os.makedirs(alone, exist_ok=True)
        shutil.copy(os.path.join(self.dir, "alice"), os.path.join(alone, "alice"))
        with self.assertRaises(QuiverException) as e:
            QuiverClient(uri=LISTED.endpoint, server_key=LISTED.public,
                         client_key=os.path.join(alone, "alice"))
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        self.assertIn("not a secret key file", str(e.exception))

    def test_bad_options_refused_at_start(self):
        quiver = os.path.join(BIN_DIR, "quiver")
        bad = os.path.join(self.dir, "bad")
        with open(bad, "w") as f:
            f.write("# ok\n\nnot-a-key\n")
        secret = os.path.join(self.dir, "server_secret")
        for args, needle in ((["--curve-clients", self.list], "--curve-secret-key"),
                             (["--curve-secret-key", secret, "--curve-clients", bad], "line 3"),
                             (["--curve-secret-key", secret, "--curve-clients", "/nonexistent"],
                              "cannot be read")):
            p = subprocess.run([quiver, "serve", "--data", os.path.join(self.dir, "d"),
                                "--check-config"] + args, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(needle, p.stderr)
        p = subprocess.run([quiver, "serve", "--data", os.path.join(self.dir, "d"),
                            "--check-config", "--curve-secret-key", secret,
                            "--curve-clients", self.list], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
