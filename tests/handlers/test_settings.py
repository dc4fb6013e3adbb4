"""The function's settings: read once from the environment the manifest declares."""

from __future__ import annotations

import pytest

from handlers import bootstrap
from handlers.settings import VARIABLES, ConfigurationError, Endpoints, Settings
from stack.manifest import FUNCTIONS

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tasks-cursor-AbCdEf"


def test_every_variable_the_manifest_declares_is_a_setting() -> None:
    declared = {name for function in FUNCTIONS for name in function.environment}
    assert declared == set(VARIABLES.values())


def test_reads_the_environment_once_into_typed_values() -> None:
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "tasks-prod",
            "BUCKET_NAME": "files",
            "BUS_NAME": "bus",
            "CURSOR_SECRET_ARN": SECRET_ARN,
            "SECRETSMANAGER_ENDPOINT": "http://127.0.0.1:8002",
            "MAX_BODY_BYTES": "1024",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "DYNAMODB_ENDPOINT": "http://127.0.0.1:8001",
        }
    )
    assert settings == Settings(
        region="eu-west-1",
        endpoints=Endpoints(
            dynamodb="http://127.0.0.1:8001", secretsmanager="http://127.0.0.1:8002"
        ),
        table_name="tasks-prod",
        bucket_name="files",
        bus_name="bus",
        cursor_secret_arn=SECRET_ARN,
        max_body_bytes=1024,
    )


def test_aws_region_wins_over_the_default_region() -> None:
    environ = {"AWS_REGION": "ap-southeast-2", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert Settings.from_environment(environ).region == "ap-southeast-2"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES must be a positive integer, not 'lots'"),
        ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES must be a positive integer, not '0'"),
    ],
)
def test_unusable_values_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_environment(environ)


def test_a_setting_the_function_was_not_given_is_named() -> None:
    settings = Settings.from_environment({"TABLE_NAME": "t"})
    assert settings.require("table_name") == "t"
    with pytest.raises(ConfigurationError, match="BUCKET_NAME is not set"):
        bootstrap.build_attachment_store(settings)
    with pytest.raises(ConfigurationError, match="CURSOR_SECRET_ARN is not set"):
        bootstrap.build_container(settings)


def test_the_stream_publisher_is_built_from_the_bus_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "settings", lambda: Settings(bus_name="bus", region="eu-west-1"))
    bootstrap.event_publisher.cache_clear()
    try:
        publisher = bootstrap.event_publisher()
        assert (publisher.bus_name, publisher.region) == ("bus", "eu-west-1")  # type: ignore[attr-defined]
    finally:
        bootstrap.event_publisher.cache_clear()


def test_the_auto_approval_rules_are_read_once_in_order() -> None:
    value = '["leads: high by leads, oncall","ops: critical by ops"]'
    settings = Settings.from_environment({"AUTO_APPROVE": value})
    assert [rule.name for rule in settings.auto_approval] == ["leads", "ops"]
    assert Settings.from_environment({}).auto_approval == ()
    assert Settings.from_environment({"AUTO_APPROVE": "[]"}).auto_approval == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("leads: high by leads", "AUTO_APPROVE: not a JSON list of rules"),
        ('["leads high"]', "AUTO_APPROVE: rule 1 \\('leads high'\\): expected"),
    ],
)
def test_unusable_rules_are_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_environment({"AUTO_APPROVE": value})


def test_the_api_service_applies_the_rules() -> None:
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "t",
            "BUCKET_NAME": "b",
            "CURSOR_SECRET_ARN": SECRET_ARN,
            "AWS_REGION": "eu-west-1",
            "AUTO_APPROVE": '["leads: high by leads"]',
        }
    )
    container = bootstrap.build_container(settings)
    assert container.service.auto_approval == settings.auto_approval
    assert [rule.decided_by for rule in container.service.auto_approval] == ["auto:leads"]
