"""The adapters' botocore clients share one session's data (`taskcore.adapters.clients`): a
client built in a session of its own reads botocore's endpoint data again, ~65 ms of a cold
start each (`make bench`'s restore figure: the before-snapshot init)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Counts the reads of botocore's endpoints.json while the adapters build the clients an HTTP
# function builds (S3 twice, Secrets Manager, PynamoDB's DynamoDB), then the reads a client of
# a session of its own adds: the control that the count sees a second read at all.
SCRIPT = """
import botocore.loaders, botocore.session
reads = []
original = botocore.loaders.JSONFileLoader.load_file
def counting(self, file_path):
    if file_path.endswith("endpoints"):
        reads.append(file_path)
    return original(self, file_path)
botocore.loaders.JSONFileLoader.load_file = counting

from taskcore.adapters import clients
from taskcore.adapters.dynamodb import bind_models
local = "http://127.0.0.1:9"
clients.LazyClient("s3", local, timeout_s=5).get()
clients.LazyClient("s3", local, timeout_s=30).get()
clients.build_client("secretsmanager", local)
bind_models("tasks", local, "us-east-1").connection.client
shared = len(reads)
botocore.session.get_session().create_client(
    "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
)
print(shared, len(reads) - shared)
"""


def test_every_client_of_a_process_reads_botocores_endpoint_data_once() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True
    )
    shared, own_session = map(int, done.stdout.split())
    assert (shared, own_session) == (1, 1)
