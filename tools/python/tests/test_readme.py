"""The README's Python example runs as printed against a real server (needs the quick
setup and dynamic fields of PROTOCOL.md 1.1)."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qv_server import ROOT, Server  # noqa: E402


class ReadmeExampleTest(unittest.TestCase):
    def test_example_runs(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        section = readme[readme.index("## Python client"):]
        code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
        self.assertIn('uri="tcp://127.0.0.1:19530"', code)
        server = Server().start()
        try:
            code = code.replace('uri="tcp://127.0.0.1:19530"', 'uri="%s"' % server.endpoint)
            env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tools", "python"))
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, timeout=120)
        finally:
            server.cleanup()
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0], "1000")
        self.assertEqual(len(lines), 7, out.stdout)         # 3 hits, query, get+delete, code
        for hit in lines[1:4]:
            self.assertTrue(hit.endswith("{'color': 'red'}"), hit)
        self.assertIn("'delete_count': 500", lines[5])
        self.assertEqual(lines[6], "NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
