"""`StackConfig.from_pulumi`: the program's one parse of the stack's config."""

from __future__ import annotations

import contextvars

import pulumi
import pytest

from infra.mocks import stack_config
from stack.config import StackConfig
from tests.infra.graph import STACKS


def _from_pulumi(stack: str, **overrides: object) -> StackConfig:
    """As `__main__.py` parses it, with the values the CLI would hand the program."""

    def parse() -> StackConfig:
        pulumi.runtime.set_all_config(stack_config(stack, overrides=overrides))
        return StackConfig.from_pulumi(
            pulumi.Config("tasks"), stack=stack, region=pulumi.Config("aws").get("region")
        )

    return contextvars.Context().run(parse)


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_and_the_local_platform_read_the_same_config(stack: str) -> None:
    assert _from_pulumi(stack) == StackConfig.from_stack_file(stack)


def test_values_are_typed() -> None:
    config = _from_pulumi("prod")
    assert config.log_retention_days == 90
    assert config.point_in_time_recovery is True
    assert config.cors_allow_origins == ("https://tasks.example.com",)
    assert config.region == "eu-west-1"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tasks:corsAllowOrigins": ["*"]}, "prod must not allow CORS from '\\*'"),
        ({"tasks:logRetentionDays": 10}, "log_retention_days must be one of"),
        ({"tasks:domainName": "api.example.com"}, "set together"),
        ({"tasks:jwtIssuer": "https://issuer.example.com/"}, "needs its jwtAudience"),
        ({"tasks:throttleRateLimit": 0}, "at least 1"),
    ],
)
def test_bad_values_stop_the_program(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _from_pulumi("prod", **overrides)


def test_only_the_projects_namespace_is_read() -> None:
    with pytest.raises(ValueError, match="namespace 'aws'"):
        contextvars.Context().run(
            lambda: StackConfig.from_pulumi(pulumi.Config("aws"), stack="dev", region=None)
        )


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown config key"):
        StackConfig.from_values("dev", {"tasks:lambdaMemory": 512})
