"""The function's settings: read once from the environment the manifest declares."""

from __future__ import annotations

from datetime import timedelta

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
        (
            {"ARCHIVE_COMPLETED_AFTER_DAYS": "-1"},
            "ARCHIVE_COMPLETED_AFTER_DAYS must be a whole number of days",
        ),
        ({"ARCHIVE_COMPLETED_AFTER_DAYS": "7.5"}, "not '7.5'"),
        ({"ARCHIVE_COMPLETED_AFTER_DAYS": "\uff17"}, "whole number of days"),  # a fullwidth 7
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


def test_the_archive_settings_reach_the_repository_and_the_archive_store() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "t",
            "BUCKET_NAME": "b",
            "ARCHIVE_COMPLETED_AFTER_DAYS": "7",
            "KMS_KEY_ARN": key,
        }
    )
    assert settings.archive_after == timedelta(days=7)
    assert bootstrap.build_task_repository(settings).archive_after == timedelta(days=7)
    store = bootstrap.build_archive_store(settings)
    assert (store.bucket, store.sse_kms_key_id) == ("b", key)
    service = bootstrap.build_archive_service(settings)
    assert isinstance(service.store, type(store))
    assert (service.store.bucket, service.store.sse_kms_key_id) == ("b", key)
    assert service.pause is bootstrap.archive_pause
    for never in ({"TABLE_NAME": "t"}, {"TABLE_NAME": "t", "ARCHIVE_COMPLETED_AFTER_DAYS": "0"}):
        assert (
            bootstrap.build_task_repository(Settings.from_environment(never)).archive_after is None
        )


def test_archivers_that_lose_a_race_wait_a_little_longer_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("handlers.bootstrap.time.sleep", slept.append)
    for attempt in (1, 2, 3, 10):
        bootstrap.archive_pause(attempt)
    assert all(0 <= s <= limit for s, limit in zip(slept, (0.05, 0.1, 0.2, 1.0), strict=True))


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


def test_the_approvers_queue_s_shards_reach_the_task_repository() -> None:
    def built(environ: dict[str, str]) -> int:
        settings = Settings.from_environment({"TABLE_NAME": "t", **environ})
        return bootstrap.build_task_repository(settings).approval_shards

    assert built({}) == 1
    assert built({"APPROVAL_QUEUE_SHARDS": "16"}) == 16
    for bad in ("0", "17", "x", "-1"):
        with pytest.raises(ConfigurationError, match="APPROVAL_QUEUE_SHARDS"):
            built({"APPROVAL_QUEUE_SHARDS": bad})
