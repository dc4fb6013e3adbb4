"""The price table (bench/prices.py): every key the cost bench needs, each price sourced.

The figures themselves come from stored sources this machine cannot re-read at test time;
what is checked here is the table's shape: every key present, every price positive and
dated and sourced, `cost()`'s arithmetic, and a helpful error for an unknown key.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from bench.prices import PRICES, Price, price

KEYS = (
    "apigateway.http.request",
    "lambda.request",
    "lambda.arm64.gb_second",
    "dynamodb.ondemand.write_request_unit",
    "dynamodb.ondemand.read_request_unit",
    "eventbridge.custom_event",
    "stepfunctions.standard.transition",
    "s3.standard.put",
    "s3.standard.get",
    "sns.publish",
    "sns.email_delivery",
    "logs.ingestion",
    "kms.request",
    "secretsmanager.api_call",
    "xray.trace_recorded",
)
REGIONS = {"eu-west-1", "us-east-1", "us-west-2"}
DOC = Path(__file__).parents[2] / "docs" / "cost.md"


def test_every_key_the_bench_needs_is_priced() -> None:
    assert set(KEYS) <= set(PRICES)


@pytest.mark.parametrize("key", KEYS)
def test_each_price_is_filed_under_its_own_key(key: str) -> None:
    assert PRICES[key].key == key
    assert price(key) is PRICES[key]


@pytest.mark.parametrize("key", KEYS)
def test_each_price_is_positive(key: str) -> None:
    p = PRICES[key]
    assert p.usd > 0
    assert p.per > 0
    assert p.unit.strip()


@pytest.mark.parametrize("key", KEYS)
def test_each_price_is_dated_sourced_and_placed(key: str) -> None:
    p = PRICES[key]
    as_of = date.fromisoformat(p.as_of)
    # The date of the source read, not of a run: no source here predates the Nov 2024 price
    # changes, and none postdates this table.
    assert date(2024, 11, 1) <= as_of <= date(2026, 12, 31)
    assert p.source.strip()
    assert "http" in p.source  # a URL of the AWS price list, page or doc it comes from
    assert p.region in REGIONS


@pytest.mark.parametrize("key", KEYS)
def test_a_price_from_outside_eu_west_1_says_so(key: str) -> None:
    p = PRICES[key]
    if p.region != "eu-west-1":
        assert "not eu-west-1" in p.note


def test_nothing_is_unsourced() -> None:
    assert [k for k, p in PRICES.items() if p.note.startswith("UNSOURCED:")] == []


def test_cost_scales_the_price_to_the_units() -> None:
    p = price("lambda.request")
    assert p.cost(p.per) == pytest.approx(p.usd)
    assert p.cost(0) == 0
    assert p.cost(3 * p.per) == pytest.approx(3 * p.usd)
    assert p.cost(1) == pytest.approx(p.usd / p.per)


def test_cost_of_an_operation_adds_up() -> None:
    # One HTTP API request served by a 1,024 MB arm64 function for 120 ms, writing one item.
    total = (
        price("apigateway.http.request").cost(1)
        + price("lambda.request").cost(1)
        + price("lambda.arm64.gb_second").cost(1.0 * 0.120)
        + price("dynamodb.ondemand.write_request_unit").cost(1)
    )
    assert total == pytest.approx(1.11e-6 + 0.20e-6 + 0.0000133334 * 0.120 + 0.705e-6)


def test_a_price_per_thousand_is_not_read_per_unit() -> None:
    put = price("s3.standard.put")
    assert put.per == 1_000
    assert put.cost(1_000) == pytest.approx(put.usd)
    assert put.cost(1) == pytest.approx(put.usd / 1_000)


def test_an_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as raised:
        price("nope")
    message = str(raised.value)
    assert "nope" in message
    for key in KEYS:
        assert key in message


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        PRICES["lambda.request"] = PRICES["kms.request"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("usd", 0.0),
        ("usd", -1.0),
        ("per", 0.0),
        ("as_of", "last week"),
        ("as_of", ""),
        ("source", " "),
        ("region", ""),
    ],
)
def test_a_price_without_a_positive_figure_a_date_or_a_source_is_refused(
    field: str, value: object
) -> None:
    fields: dict[str, object] = {
        "key": "x.y",
        "usd": 1.0,
        "per": 1_000_000,
        "unit": "requests",
        "region": "eu-west-1",
        "as_of": "2026-09-11",
        "source": "https://example.invalid/pricing",
    }
    Price(**fields)  # type: ignore[arg-type]
    fields[field] = value
    with pytest.raises(ValueError, match=field):
        Price(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", KEYS)
def test_docs_cost_md_states_the_module_s_figure(key: str) -> None:
    p = PRICES[key]
    rows = [line for line in DOC.read_text().splitlines() if line.startswith(f"| `{key}` |")]
    assert len(rows) == 1, f"docs/cost.md needs one Prices row for {key}"
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    stated = re.fullmatch(r"\$([\d.]+) per ([\d,]+)", cells[1])
    assert stated, cells[1]
    assert float(stated[1]) == pytest.approx(p.usd)
    assert float(stated[2].replace(",", "")) == p.per
    assert cells[3].strip("*") == p.region
    assert cells[4] == p.as_of
