"""Each repository call costs exactly the DynamoDB requests the design promises, on the wire."""

from __future__ import annotations

from bench.dynamodb_requests import EXPECTED, count_requests


def test_requests_per_repository_call(dynamodb_local) -> None:
    counts = count_requests(dynamodb_local.endpoint_url, dynamodb_local.client())
    assert {name: counts[name][0] for name in EXPECTED} == EXPECTED
    assert counts["service update (get + save)"][0] == 2
