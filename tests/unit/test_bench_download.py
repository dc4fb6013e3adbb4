"""The bench's download figures run end to end at a small size (one run of each): the function's
own server, started from its startup script, streams every task; the Query loop reads the same.
No timing is asserted: timings on a shared machine belong to `make bench`."""

from __future__ import annotations

from bench import download


def test_one_download_of_each_size_and_one_query_loop() -> None:
    result = download.run(repeats=1, sizes=(30, 250))
    assert [(r.kind, r.tasks) for r in result.runs] == [
        ("query", 250),
        ("download", 250),
        ("download", 30),
    ]
    streamed = result.of("download", 250)[0]
    assert streamed.first_byte_s is not None
    assert 0 < streamed.first_byte_s < streamed.seconds
    assert streamed.peak_rss_kb >= streamed.ready_rss_kb > 0
    figures = download.data(result)
    assert figures["memory_ratio"] == result.memory_ratio
    assert set(figures["first_byte_ms"]) == {"30", "250"}
