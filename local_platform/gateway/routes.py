"""Route selection as an HTTP API does it: the manifest's routes, compiled once, matched
against the percent-decoded request path; the most specific route wins (literal segments beat
`{param}` beat `{greedy+}`, a method beats `ANY`), and no match falls to `$default`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import unquote_to_bytes

import attrs

from stack.manifest import Function, Route

DEFAULT_ROUTE_KEY = "$default"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


SegmentKind = Literal["literal", "param", "greedy"]
_RANK: dict[SegmentKind, int] = {"literal": 0, "param": 1, "greedy": 2}


@attrs.frozen
class CompiledRoute:
    route: Route
    function: Function
    segments: tuple[tuple[SegmentKind, str], ...]

    @classmethod
    def compile(cls, route: Route, function: Function) -> CompiledRoute:
        segments: list[tuple[SegmentKind, str]] = []
        for part in route.path.split("/")[1:]:
            if part.startswith("{") and part.endswith("+}"):
                segments.append(("greedy", part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append(("param", part[1:-1]))
            else:
                segments.append(("literal", part))
        return cls(route, function, tuple(segments))

    @property
    def specificity(self) -> tuple[int, ...]:
        """Smaller is more specific: literal segments beat parameters beat greedy ones."""
        ranks = tuple(_RANK[kind] for kind, _ in self.segments)
        return (*ranks, 1 if str(self.route.method) == "ANY" else 0)

    def match(self, method: str, parts: Sequence[str]) -> dict[str, str] | None:
        """The path parameters if `method parts` matches this route, else None."""
        if str(self.route.method) not in (method, "ANY"):
            return None
        params: dict[str, str] = {}
        for index, (kind, name) in enumerate(self.segments):
            if kind == "greedy":  # {name+}: the rest of the path, at least one segment
                rest = "/".join(parts[index:])
                return {**params, name: rest} if rest else None
            part = parts[index] if index < len(parts) else None
            if part is None or (kind == "literal" and part != name) or not part:
                return None  # a {param} is one non-empty segment; a literal must be equal
            if kind == "param":
                params[name] = part
        return params if len(parts) == len(self.segments) else None


@attrs.frozen
class RouteMatch:
    function: Function
    route_key: str
    authorized: bool
    path_parameters: dict[str, str]


def select_route(
    routes: Sequence[CompiledRoute], default: Function | None, method: str, path: str
) -> RouteMatch | None:
    """The most specific route for `method path`, else the `$default` route, else None."""
    parts = path.split("/")[1:]
    best: tuple[tuple[int, ...], CompiledRoute, dict[str, str]] | None = None
    for compiled in routes:
        params = compiled.match(method, parts)
        if params is not None and (best is None or compiled.specificity < best[0]):
            best = (compiled.specificity, compiled, params)
    if best is not None:
        _, compiled, params = best
        route = compiled.route
        return RouteMatch(compiled.function, route.key, route.authorized, params)
    if default is not None:
        # API Gateway's $default route carries the authorizer too (see infra/).
        return RouteMatch(default, DEFAULT_ROUTE_KEY, True, {})
    return None


def decode_path(raw_path: bytes) -> str:
    """The path as HTTP APIs hand it to routing and to the Lambda (`rawPath`).

    Live captures (hotsock/voker, vokerhttp/testdata/ingress-paths.json, July 2026) show that an
    HTTP API percent-decodes the path twice and cuts it at a decoded `?`: `/a%20b` becomes
    `/a b`, `/a%2Fb` becomes `/a/b` (two segments), `/a%252Fb` becomes `/a/b`, `/a%3Fb` becomes
    `/a`, and `/a%25zz` (not decodable twice) is rejected with 400. ValueError if it does not
    decode.
    """
    text = raw_path.decode("utf-8")
    for _ in range(2):
        if _BAD_ESCAPE.search(text):
            raise ValueError("invalid percent-escape in path")
        text = unquote_to_bytes(text).decode("utf-8")
    return text.partition("?")[0] or "/"
