"""The OpenAPI linters' exceptions (.spectral.yaml, .redocly.lint-ignore.yaml) against openapi.yaml.

`make lint` runs Redocly (its recommended rules) and Spectral (its OpenAPI rules and the OWASP
API Security Top 10 2023) over the document, and fails on any finding. What the linters cannot
check is their own configuration:

* OWASP's size rules (a `maxLength` on every string, `maxItems` on every array, a range on every
  integer) are switched off only for some nodes of the document, each named by its JSON pointer,
  and none of those nodes is part of a request (a parameter or a request body, `$ref`s
  followed): whatever a client sends is bounded by the document, as the handler bounds it;
* every exception says why, in a comment right above it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
SPECTRAL = ROOT / ".spectral.yaml"
REDOCLY_IGNORE = ROOT / ".redocly.lint-ignore.yaml"
SIZE_RULES = frozenset(
    {
        "owasp:api4:2023-string-limit",
        "owasp:api4:2023-string-restricted",
        "owasp:api4:2023-array-limit",
        "owasp:api4:2023-integer-limit",
        "owasp:api4:2023-integer-format",
    }
)
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _at(pointer: str) -> Any:
    node: Any = DOCUMENT
    for raw in pointer.split("/")[1:]:
        segment = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return node


def _reachable(node: Any, where: str, seen: set[str]) -> Iterator[str]:
    """The pointer of every node under `node` (at `where`), `$ref`s followed to their targets."""
    if where in seen:
        return
    seen.add(where)
    yield where
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            target = node["$ref"]
            assert target.startswith("#/"), target
            yield from _reachable(_at(target[1:]), target[1:], seen)
        for key, value in node.items():
            yield from _reachable(value, f"{where}/{_escape(key)}", seen)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _reachable(value, f"{where}/{index}", seen)


def request_nodes() -> set[str]:
    """Every node a request's parameters and bodies are described with."""
    seen: set[str] = set()
    found: set[str] = set()
    for path, item in DOCUMENT["paths"].items():
        base = f"/paths/{_escape(path)}"
        found.update(_reachable(item.get("parameters", []), f"{base}/parameters", seen))
        for method in HTTP_METHODS:
            operation = item.get(method, {})
            for part in ("parameters", "requestBody"):
                if part in operation:
                    where = f"{base}/{method}/{part}"
                    found.update(_reachable(operation[part], where, seen))
    for part in ("parameters", "requestBodies"):
        where = f"/components/{part}"
        found.update(_reachable(DOCUMENT["components"].get(part, {}), where, seen))
    return found


def spectral_exceptions() -> list[tuple[str, str]]:
    """(pattern, rule) for each rule the ruleset's overrides switch off."""
    ruleset = yaml.safe_load(SPECTRAL.read_text(encoding="utf-8"))
    return [
        (pattern, rule)
        for override in ruleset.get("overrides", [])
        for pattern in override["files"]
        for rule, severity in override["rules"].items()
        if severity == "off"
    ]


def test_request_nodes_are_found() -> None:
    """The walk reaches what it must: parameters' schemas and the bodies' shared values."""
    nodes = request_nodes()
    for pointer in (
        "/components/parameters/TaskId/schema",
        "/components/parameters/IfMatch/schema",
        "/components/schemas/CreateTask/properties/title",
        "/components/schemas/Title",
        "/components/schemas/Tag",
        "/components/schemas/Filename",
    ):
        assert pointer in nodes, pointer
    assert "/components/schemas/Task" not in nodes  # a response, never sent


def test_size_rules_are_off_only_for_response_nodes() -> None:
    ruleset = yaml.safe_load(SPECTRAL.read_text(encoding="utf-8"))
    assert not SIZE_RULES & {
        rule for rule, severity in ruleset.get("rules", {}).items() if severity == "off"
    }, "a size rule is off for the whole document"
    nodes = request_nodes()
    exempted = [(pattern, rule) for pattern, rule in spectral_exceptions() if rule in SIZE_RULES]
    assert exempted  # the ruleset has some: this test checks them
    for pattern, rule in exempted:
        document, _, fragment = pattern.partition("#")
        where = f"{rule} is off for {pattern!r}: name one node of openapi.yaml"
        assert document == "openapi.yaml", where
        assert fragment.startswith("/"), where
        _at(fragment)  # it exists
        inside = sorted(n for n in nodes if n == fragment or n.startswith(fragment + "/"))
        assert not inside, f"{rule} is off for {fragment}, which requests reach: {inside[:5]}"


def _uncommented(path: Path, entry: re.Pattern[str]) -> list[str]:
    """The lines matching `entry` without a comment on the line right above them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        line
        for above, line in zip(["", *lines], lines, strict=False)
        if entry.match(line) and not above.lstrip().startswith("#")
    ]


def test_each_exception_gives_its_reason() -> None:
    # .spectral.yaml: each override entry, and each rule switched off for the whole document.
    overrides = re.compile(r"^  - files:")
    global_off = re.compile(r'^  [\w:-]+: "?off"?$')
    assert not _uncommented(SPECTRAL, overrides)
    assert not _uncommented(SPECTRAL, global_off)
    # .redocly.lint-ignore.yaml: each rule whose problems are ignored (under a file's name).
    assert not _uncommented(REDOCLY_IGNORE, re.compile(r"^  [\w-]+:$"))
