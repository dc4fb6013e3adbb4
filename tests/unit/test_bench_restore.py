"""The bench's restore figure runs end to end (one sample of each): its snapshot process forks a
restore that answers through the real handler, and a fresh process answers the same request.
No timing is asserted: timings on a shared machine belong to `make bench`."""

from __future__ import annotations

import pytest

from bench import restore


def test_one_restore_and_one_fresh_start_answer() -> None:
    result = restore.measure(samples=1)
    assert result.samples == 1
    assert 0 < result.hooks < result.restore
    assert set(result.phases) == {
        "interpreter start",
        "import",
        "init (composition root, clients)",
        "first request",
    }
    assert all(seconds > 0 for seconds in result.phases.values())
    assert sum(result.phases.values()) == pytest.approx(result.fresh, rel=0.01)
    assert restore.data(result)["ratio"] == result.ratio
    assert "fork -> answer" in restore.render(result)
