"""The local platform's function environments: the manifest's, resolved from the stack config
as infra resolves them, and held to Lambda's 4 KB as AWS holds them."""

from __future__ import annotations

import pytest

from local_platform.platform import Services
from stack import manifest
from stack.config import StackConfig


def services(stack: str, **changes: str) -> Services:
    return Services(
        dynamodb_endpoint="http://127.0.0.1:1",
        s3_endpoint="http://127.0.0.1:2",
        cursor_secret="s" * 48,
        config=StackConfig.from_stack_file(stack),
        **changes,  # type: ignore[arg-type]
    )


def test_the_api_function_gets_the_stacks_rules() -> None:
    assert services("dev").environment(manifest.API)["AUTO_APPROVE"] == '["leads: high by leads"]'
    assert services("prod").environment(manifest.API)["AUTO_APPROVE"] == "[]"


def test_an_environment_lambda_would_refuse_is_refused() -> None:
    oversized = services("dev", issuer="https://issuer.example.com/" + "x" * 4096)
    with pytest.raises(ValueError, match=r"api: its environment takes 4[0-9]{3} bytes, more"):
        oversized.environment(manifest.API)
    assert oversized.environment(manifest.STATS)  # no issuer in its environment
