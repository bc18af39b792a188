"""The README's example: create a library, add documents, search with a filter, handle an error.

Run against a server: python examples/quickstart.py http://127.0.0.1:8080 [API_KEY]
"""

import sys

from vdb_client import Client, InvalidRequest

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
key = sys.argv[2] if len(sys.argv) > 2 else None

with Client(url, api_key=key) as vdb:
    vdb.create_library("quickstart", dimension=3, metric="cosine")
    vdb.add_document("quickstart", [{"text": "a red fox", "vector": [1, 0, 0], "metadata": {"kind": "animal"}}], id=1)
    vdb.add_document("quickstart", [{"text": "a red car", "vector": [0.9, 0.1, 0], "metadata": {"kind": "thing"}}], id=2)
    hits = vdb.search("quickstart", [1, 0, 0], k=5, filter={"kind": "thing"})["hits"]
    print([(hit["document"], hit.get("text"), round(hit["distance"], 4)) for hit in hits])
    try:
        vdb.search("quickstart", [1, 0])  # the library's vectors have 3 components
    except InvalidRequest as error:
        print(error.code)  # dimension-mismatch
    vdb.delete_library("quickstart")
