"""`make bench`: one table of figures, measured in one run on this machine.

Sections grow with the project (see the README's Performance section). Results also go to
`bench-results.json` so runs can be compared.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from bench.dynamodb_requests import EXPECTED, count_requests, render
from local_platform.dynamodb_local import DynamoDBLocal

RESULTS = Path(__file__).resolve().parent.parent / "bench-results.json"


def main() -> int:
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"make bench — {time.strftime('%Y-%m-%d %H:%M:%S')} — {machine}", flush=True)
    print(
        "\n[1/1] DynamoDB requests per repository call (DynamoDB Local, botocore hook)", flush=True
    )
    with DynamoDBLocal() as engine:
        counts = count_requests(engine.endpoint_url, engine.client())
    print(render(counts))
    off_target = {k: v[0] for k, v in counts.items() if k in EXPECTED and v[0] != EXPECTED[k]}
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine,
                "dynamodb_requests": {k: v[0] for k, v in counts.items()},
                "targets_missed": off_target,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {RESULTS.name}; targets missed: {off_target or 'none'}")
    return 1 if off_target else 0


if __name__ == "__main__":
    sys.exit(main())
