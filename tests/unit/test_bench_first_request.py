"""The bench's first-page figure runs end to end (one sample of each) against DynamoDB Local and
moto: the HTTP function's cold start answers its first page through the real handler (reading
the cursor secret on the way), and the floor's Query answers the same 20 tasks. No timing is
asserted: timings on a shared machine belong to `make bench`."""

from __future__ import annotations

from bench import first_request


def test_one_cold_start_of_each_answers_its_first_page() -> None:
    result = first_request.measure(samples=1)
    ours, floor = result.handler, result.floor
    assert 0 < ours.init < ours.first
    assert 0 < floor.init < floor.first
    assert ours.secret is not None
    assert 0 < ours.secret < ours.first - ours.init
    assert floor.secret is None
    assert ours.warm > 0
    assert floor.warm > 0
    assert first_request.data(result)["ratio"] == result.ratio
    assert "secret first read" in first_request.render(result)
