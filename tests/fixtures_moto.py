"""Pytest plugin: a moto server on 127.0.0.1, for tests of the S3 adapters and the export
worker over real HTTP (presigned URLs and multipart uploads are only worth testing that way).
One server per test module, as each module had before; tests name their own buckets.

Registered in tests/conftest.py.
"""

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from local_platform.dynamodb_local import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
