"""A function's cold-start mode, and what AWS refuses of it.

Its own module: the manifest (which every handler imports) needs it, and nothing else of the
stack's config (which imports YAML, ~20 ms of a cold start).
"""

from __future__ import annotations

import attrs

# How a function meets a cold start. AWS refuses SnapStart and provisioned concurrency on one
# function, so one mode says which (see infra/limits.py for the sources).
COLD_START_MODES = ("none", "snapstart", "provisioned")


def cold_start_problem(mode: str, provisioned: int, *, mode_key: str, count_key: str) -> str | None:
    """What is wrong with a cold-start `mode` and its `provisioned` count, in plain words naming
    the keys they came from (None if nothing is). The count is 0 when it is not given."""
    if mode not in COLD_START_MODES:
        return f"{mode_key} is {mode!r}: it must be one of {', '.join(COLD_START_MODES)}"
    if mode == "provisioned" and provisioned < 1:
        given = "is not set" if provisioned == 0 else f"is {provisioned}"
        return (
            f"{mode_key} is provisioned, so {count_key} must say how many execution "
            f"environments to keep initialised (at least 1), but it {given}"
        )
    if mode == "snapstart" and provisioned != 0:
        return (
            f"{mode_key} is snapstart and {count_key} is {provisioned}: SnapStart and "
            "provisioned concurrency cannot be combined on one function (AWS refuses it). "
            f"Choose one: {mode_key} provisioned with {count_key}, or snapstart without it"
        )
    if mode == "none" and provisioned != 0:
        return (
            f"{count_key} is {provisioned}, but {mode_key} is none: a count is only used with "
            f"{mode_key} provisioned. Set {mode_key} to provisioned, or remove {count_key}"
        )
    return None


@attrs.frozen
class ColdStart:
    """A function's cold-start mode: `none` (Lambda initialises an environment when it needs
    one), `snapstart` (Lambda snapshots each published version once initialised and resumes new
    environments from it) or `provisioned` (`provisioned` environments kept initialised on the
    function's `live` alias)."""

    mode: str = "none"
    provisioned: int = 0

    def __attrs_post_init__(self) -> None:
        problem = cold_start_problem(
            self.mode, self.provisioned, mode_key="cold start mode", count_key="provisioned"
        )
        if problem:
            raise ValueError(problem)
