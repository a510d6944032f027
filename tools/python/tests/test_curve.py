"""An encrypted API (quiver serve --curve-secret-key, ZeroMQ CURVE) against a real
server: keys from `quiver keygen`; QuiverClient and qvctl with the server's public key
work; a client without it, or with another server's, gets no answer (the handshake
fails) and reports TIMEOUT; a key that is not one is refused at once."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

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


if __name__ == "__main__":
    unittest.main()
