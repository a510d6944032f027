"""Quick setup and dynamic fields through QuiverClient (PROTOCOL.md 1.1: create_collection
with `dimension`, hidden `$meta`, "*" in output_fields), with pymilvus's defaults."""
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quiver import DataType, QuiverClient, QuiverException  # noqa: E402
from qv_server import Server  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    SERVER = Server().start()


def tearDownModule():
    SERVER.cleanup()


class DynamicTest(unittest.TestCase):
    def setUp(self):
        self.c = QuiverClient(uri=SERVER.endpoint, timeout=30)
        self.name = "d_" + self._testMethodName

    def tearDown(self):
        self.c.close()

    def test_quick_setup_defaults(self):
        self.c.create_collection(self.name, dimension=4)
        d = self.c.describe_collection(self.name)
        fields = {f["name"]: f for f in d["fields"] if not f["name"].startswith("$")}
        self.assertEqual(sorted(fields), ["id", "vector"])
        self.assertEqual(fields["id"]["type"], "int64")
        self.assertTrue(fields["id"]["primary"])
        self.assertEqual((fields["vector"]["type"], fields["vector"]["dim"],
                          fields["vector"]["metric"]), ("float_vector", 4, "COSINE"))
        # the dynamic field is on: keys outside the schema are kept
        self.c.insert(self.name, [{"id": 1, "vector": [1, 0, 0, 0], "color": "red", "size": 3},
                                  {"id": 2, "vector": [0, 1, 0, 0], "color": "blue"}])
        self.assertEqual(self.c.get(self.name, [1], output_fields=["color", "size"]),
                         [{"id": 1, "color": "red", "size": 3}])

    def test_dynamic_keys_in_search_query_filter(self):
        self.c.create_collection(self.name, dimension=3, metric_type="L2")
        rows = [{"id": i, "vector": np.full(3, i, np.float32),
                 "color": ["red", "green", "blue"][i % 3], "meta_n": i}
                for i in range(30)]
        self.c.insert(self.name, rows)
        hits = self.c.search(self.name, [[0, 0, 0]], limit=3, filter='color == "red"',
                             output_fields=["color", "meta_n"])[0]
        self.assertEqual([h["id"] for h in hits], [0, 3, 6])
        self.assertEqual(hits[1]["entity"], {"color": "red", "meta_n": 3})
        rows = self.c.query(self.name, filter='$meta["color"] == "blue" and meta_n < 10',
                            output_fields=["color"])
        self.assertEqual(sorted(r["id"] for r in rows), [2, 5, 8])
        star = self.c.get(self.name, [4], output_fields=["*"])
        self.assertEqual(len(star), 1)
        self.assertEqual((star[0]["color"], star[0]["meta_n"]), ("green", 4))
        self.assertEqual(self.c.delete(self.name, filter='color == "green"')["delete_count"], 10)

    def test_quick_setup_names_string_ids_auto_id(self):
        self.c.create_collection(self.name, dimension=2, primary_field_name="pk",
                                 vector_field_name="emb", id_type="string", max_length=16)
        self.c.insert(self.name, [{"pk": "a", "emb": [1, 2], "note": "x"}])
        self.assertEqual(self.c.get(self.name, "a", output_fields=["note"]),
                         [{"pk": "a", "note": "x"}])
        name = self.name + "_auto"
        self.c.create_collection(name, dimension=2, auto_id=True)
        ids = self.c.insert(name, [{"vector": [1, 2]}, {"vector": [2, 1]}])["ids"]
        self.assertEqual(len(set(ids)), 2)
        self.assertTrue(self.c.describe_collection(name)["auto_id"])

    def test_dynamic_off_and_on_with_schema(self):
        s = self.c.create_schema(enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
        self.c.create_collection(self.name, schema=s)
        with self.assertRaises(QuiverException) as e:
            self.c.insert(self.name, [{"id": 1, "vector": [1, 2], "color": "red"}])
        self.assertEqual(e.exception.code, "INVALID_ARGUMENT")
        on = self.name + "_on"
        s.enable_dynamic_field = True
        self.c.create_collection(on, schema=s)
        self.c.insert(on, [{"id": 1, "vector": [1, 2], "color": "red"}])
        self.assertEqual(self.c.query(on, filter='color == "red"', output_fields=["color"]),
                         [{"id": 1, "color": "red"}])


if __name__ == "__main__":
    unittest.main()
