"""quiver: the Python client of a Quiver server, modelled on pymilvus's MilvusClient.

    from quiver import QuiverClient
    client = QuiverClient(uri="tcp://127.0.0.1:19530")
    client.create_collection("docs", dimension=4)
    client.insert("docs", [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4], "color": "red"}])
    client.search("docs", data=[[0.1, 0.2, 0.3, 0.4]], limit=3, output_fields=["color"])
"""
from .client import QuiverClient, MilvusClient
from .errors import QuiverException, MilvusException
from .schema import CollectionSchema, DataType, FieldSchema, IndexParams

__all__ = ["QuiverClient", "MilvusClient", "QuiverException", "MilvusException",
           "CollectionSchema", "DataType", "FieldSchema", "IndexParams"]
__version__ = "0.1.0"
