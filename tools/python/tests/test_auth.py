"""Authentication and roles (quiver serve --auth) from the clients against a real
server: QuiverClient(token=) and $QUIVER_TOKEN send the token on every request, its
user and role methods manage the store, a missing token or privilege raises
UNAUTHENTICATED / PERMISSION_DENIED; qvctl --token and $QUIVER_TOKEN."""
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quiver import QuiverClient, QuiverException  # noqa: E402
from qv_server import BIN_DIR, Server  # noqa: E402

SERVER = None
ROOT = "root:rootpass1"


def setUpModule():
    global SERVER
    os.environ["QUIVER_ROOT_PASSWORD"] = "rootpass1"
    SERVER = Server("--auth").start()


def tearDownModule():
    SERVER.cleanup()
    os.environ.pop("QUIVER_ROOT_PASSWORD", None)


def make_user(root, user, password, role, privilege, collection):
    """A user whose one role holds privilege on collection ("*": every one)."""
    root.create_user(user, password)
    root.create_role(role)
    root.grant_privilege(role, "Collection", privilege, collection)
    root.grant_role(user, role)


class AuthTest(unittest.TestCase):
    def test_roles_from_the_client(self):
        root = QuiverClient(uri=SERVER.endpoint, timeout=30, token=ROOT)
        root.create_collection("pa", dimension=2)
        root.create_collection("pb", dimension=2)
        root.insert("pa", [{"id": 1, "vector": [1.0, 2.0]}])
        make_user(root, "pyuser", "pypass12", "pyrole", "Search", "pa")
        self.assertIn("pyuser", root.list_users())
        self.assertIn("pyrole", root.list_roles())
        desc = root.describe_user("pyuser")
        self.assertEqual(desc["roles"], ["pyrole"])
        self.assertEqual(desc["privileges"],
                         [{"role": "pyrole", "collection": "pa", "privilege": "Search",
                           "grantor": "root"}])
        root.grant_privilege("pyrole", "Global", "Query", "*")
        self.assertEqual(root.describe_role("pyrole")["privileges"], [
            {"object_type": "Global", "object_name": "*", "db_name": "default",
             "role_name": "pyrole", "privilege": "Query", "grantor_name": "root"},
            {"object_type": "Collection", "object_name": "pa", "db_name": "default",
             "role_name": "pyrole", "privilege": "Search", "grantor_name": "root"}])
        root.revoke_privilege("pyrole", "Global", "Query", "*")
        self.assertEqual(len(root.describe_role("pyrole")["privileges"]), 1)
        with self.assertRaises(QuiverException) as e:
            root.describe_role("no_such_role")
        self.assertEqual(e.exception.code, "NOT_FOUND")

        user = QuiverClient(uri=SERVER.endpoint, timeout=30, user="pyuser", password="pypass12")
        hits = user.search("pa", [[1.0, 2.0]], limit=1)
        self.assertEqual(hits[0][0]["id"], 1)
        with self.assertRaises(QuiverException) as e:
            user.search("pb", [[1.0, 2.0]], limit=1)
        self.assertEqual(e.exception.code, "PERMISSION_DENIED")
        with self.assertRaises(QuiverException) as e:
            user.insert("pa", [{"id": 2, "vector": [0.0, 0.0]}])
        self.assertEqual(e.exception.code, "PERMISSION_DENIED")
        user.update_password("pyuser", "pypass12", "pypass34")
        with self.assertRaises(QuiverException) as e:
            user.list_collections()
        self.assertEqual(e.exception.code, "UNAUTHENTICATED")
        user.close()
        # A reset by root, without the old password; one's own needs it
        user = QuiverClient(uri=SERVER.endpoint, timeout=30, token="pyuser:pypass34")
        with self.assertRaises(QuiverException) as e:
            user.update_password("pyuser", None, "pypass56")
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        user.close()
        root.reset_password("pyuser", None, "pypass78")
        root.update_password("pyuser", None, "pypass34")
        user = QuiverClient(uri=SERVER.endpoint, timeout=30, token="pyuser:pypass34")
        self.assertEqual(user.search("pa", [[1.0, 2.0]], limit=1)[0][0]["id"], 1)
        user.close()

        # $QUIVER_TOKEN when no token is given
        os.environ["QUIVER_TOKEN"] = "pyuser:pypass34"
        try:
            env_user = QuiverClient(uri=SERVER.endpoint, timeout=30)
            self.assertEqual(env_user.search("pa", [[1.0, 2.0]], limit=1)[0][0]["id"], 1)
            env_user.close()
        finally:
            del os.environ["QUIVER_TOKEN"]
        root.revoke_role("pyuser", "pyrole")
        root.drop_role("pyrole")
        root.drop_user("pyuser")
        self.assertNotIn("pyuser", root.list_users())
        root.close()

    def test_no_token(self):
        c = QuiverClient(uri=SERVER.endpoint, timeout=30)
        with self.assertRaises(QuiverException) as e:
            c.list_collections()
        self.assertEqual(e.exception.code, "UNAUTHENTICATED")
        c.close()

    def test_qvctl_token(self):
        qvctl = os.path.join(BIN_DIR, "qvctl")
        env = dict(os.environ, QV_SERVER=SERVER.endpoint)
        env.pop("QUIVER_TOKEN", None)
        for args, extra_env in ((["--token", ROOT], {}), (["--token=" + ROOT], {}),
                                ([], {"QUIVER_TOKEN": ROOT})):
            p = subprocess.run([qvctl, "--timeout", "30"] + args + ["list"],
                               env=dict(env, **extra_env), capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([qvctl, "--timeout", "30", "list"], env=env, capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("UNAUTHENTICATED", p.stdout + p.stderr)

    def test_qvctl_users_and_roles(self):
        """qvctl user / role manage the store; passwords come on standard input."""
        qvctl = os.path.join(BIN_DIR, "qvctl")
        env = dict(os.environ, QV_SERVER=SERVER.endpoint)
        env.pop("QUIVER_TOKEN", None)

        def run(args, token=ROOT, stdin="", code=0):
            p = subprocess.run([qvctl, "--timeout", "30", "--token", token] + args, env=env,
                               input=stdin, capture_output=True, text=True)
            self.assertEqual(p.returncode, code, (args, p.stdout, p.stderr))
            return p

        root = QuiverClient(uri=SERVER.endpoint, timeout=30, token=ROOT)
        root.create_collection("qa", dimension=2)
        root.insert("qa", [{"id": 1, "vector": [1.0, 2.0]}])
        self.assertIn("created user 'cli'", run(["user", "create", "cli"], stdin="clipass1\n").stdout)
        self.assertIn("cli", run(["user", "list"]).stdout.split())
        run(["role", "create", "cliread"])
        self.assertIn("granted Search on collection 'qa' to role 'cliread'",
                      run(["role", "grant", "cliread", "Search", "--collection", "qa"]).stdout)
        self.assertEqual(run(["role", "describe", "cliread"]).stdout, "qa Search\n")
        run(["user", "grant", "cli", "cliread"])
        self.assertEqual(run(["user", "describe", "cli"]).stdout, "cliread:\n  qa Search\n")
        user = QuiverClient(uri=SERVER.endpoint, timeout=30, token="cli:clipass1")
        self.assertEqual(user.search("qa", [[1.0, 2.0]], limit=1)[0][0]["id"], 1)
        user.close()
        # One's own password: old then new; a wrong old one is refused
        p = run(["user", "password", "cli"], token="cli:clipass1", stdin="nope-nope\nclipass2\n", code=1)
        self.assertIn("old_password", p.stdout + p.stderr)
        run(["user", "password", "cli"], token="cli:clipass1", stdin="clipass1\nclipass2\n")
        # An Admin's reset: the new one only
        self.assertIn("reset the password of user 'cli'",
                      run(["user", "password", "cli", "--reset"], stdin="clipass3\n").stdout)
        user = QuiverClient(uri=SERVER.endpoint, timeout=30, token="cli:clipass3")
        self.assertEqual(user.search("qa", [[1.0, 2.0]], limit=1)[0][0]["id"], 1)
        user.close()
        # No privilege to manage users; no password on stdin; usage errors
        p = run(["user", "list"], token="cli:clipass3", code=1)
        self.assertIn("PERMISSION_DENIED", p.stdout + p.stderr)
        p = run(["user", "create", "other"], stdin="", code=1)
        self.assertIn("no password on standard input", p.stderr)
        run(["user", "frobnicate", "x"], code=2)
        run(["role", "grant", "cliread"], code=2)
        self.assertIn("Usage: qvctl user", run(["user", "--help"]).stdout)
        self.assertIn("Usage: qvctl role", run(["role", "--help"]).stdout)
        # --output json; the built-in roles are listed
        p = run(["--output", "json", "role", "list"])
        self.assertIn("admin", p.stdout)
        self.assertIn("public", p.stdout)
        run(["user", "revoke", "cli", "cliread"])
        run(["role", "revoke", "cliread", "Search", "--collection", "qa"])
        self.assertIn("has no privileges", run(["role", "describe", "cliread"]).stdout)
        run(["role", "drop", "cliread"])
        run(["user", "drop", "cli"])
        self.assertNotIn("cli", run(["user", "list"]).stdout.split())
        root.drop_collection("qa")
        root.close()


if __name__ == "__main__":
    unittest.main()


class UserRateTest(unittest.TestCase):
    """--max-user-searches-per-sec: each user's searches are limited together, over all
    of its connections; another user is not held back by it."""

    def test_user_rate(self):
        server = Server("--auth", "--max-user-searches-per-sec", "5").start()
        try:
            root = QuiverClient(uri=server.endpoint, timeout=30, token=ROOT)
            root.create_collection("ra", dimension=2)
            root.insert("ra", [{"id": 1, "vector": [1.0, 2.0]}])
            make_user(root, "rater", "raterpass1", "rsearch", "Search", "*")
            a = QuiverClient(uri=server.endpoint, timeout=30, token="rater:raterpass1")
            b = QuiverClient(uri=server.endpoint, timeout=30, token="rater:raterpass1")
            refused = None
            for i in range(40):
                try:
                    (a if i % 2 else b).search("ra", [[1.0, 2.0]], limit=1)
                except QuiverException as e:
                    refused = e
                    break
            self.assertIsNotNone(refused)
            self.assertEqual(refused.code, "RESOURCE_EXHAUSTED")
            self.assertIn("user 'rater'", str(refused))
            self.assertIn("--max-user-searches-per-sec", str(refused))
            self.assertLess(i, 12)          # 5 a second, however many connections
            # root's own bucket is full
            self.assertEqual(root.search("ra", [[1.0, 2.0]], limit=1)[0][0]["id"], 1)
            # a second later the user searches again
            time.sleep(1.2)
            self.assertEqual(a.search("ra", [[1.0, 2.0]], limit=1)[0][0]["id"], 1)
            for c in (a, b, root):
                c.close()
        finally:
            server.cleanup()

    def test_user_insert_rate(self):
        """--max-user-insert-mb-per-sec: a user's insert bytes over all of its
        connections are limited (RESOURCE_EXHAUSTED naming the limit and the user, the
        rows not written), another user's are not, and a second later it passes."""
        server = Server("--auth", "--max-user-insert-mb-per-sec", "1").start()
        try:
            root = QuiverClient(uri=server.endpoint, timeout=30, token=ROOT)
            root.create_collection("ri", dimension=1024)
            make_user(root, "loader", "loaderpass1", "rinsert", "Insert", "*")
            a = QuiverClient(uri=server.endpoint, timeout=30, token="loader:loaderpass1")
            b = QuiverClient(uri=server.endpoint, timeout=30, token="loader:loaderpass1")

            def rows(first):                # 150 x 4 KiB: 600 KiB
                return [{"id": i, "vector": [0.5] * 1024} for i in range(first, first + 150)]
            # Both connections at once (one after the other, the first one's time in the
            # server, long under ASan, would refill the bucket): one of them is refused
            batches = {a: rows(0), b: rows(150)}
            errors = {}

            def insert(c):
                try:
                    c.insert("ri", batches[c])
                except QuiverException as e:
                    errors[c] = e
            threads = [threading.Thread(target=insert, args=(c,)) for c in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(errors), 1)
            (late, refused), = errors.items()
            self.assertEqual(refused.code, "RESOURCE_EXHAUSTED")
            self.assertIn("user 'loader'", str(refused))
            self.assertIn("--max-user-insert-mb-per-sec", str(refused))
            root.insert("ri", rows(300))    # root's own allowance
            time.sleep(1.2)
            late.insert("ri", batches[late])
            got = root.query("ri", filter="id >= 0", output_fields=["count(*)"],
                             consistency_level="Strong")
            self.assertEqual(got[0]["count(*)"], 450)
            for c in (a, b, root):
                c.close()
        finally:
            server.cleanup()
