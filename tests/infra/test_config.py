"""`StackConfig.from_pulumi`: the program's one parse of the stack's config."""

from __future__ import annotations

import contextvars

import pulumi
import pytest

from infra.mocks import stack_config
from stack import manifest
from stack.cold_start import ColdStart
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
        ({"tasks:archiveCompletedAfterDays": -1}, "archiveCompletedAfterDays is -1"),
        ({"tasks:archiveColdStorageClass": "GLACIER"}, "would need a restore"),
        (
            {"tasks:archiveColdStorageClass": "STANDARD_IA", "tasks:archiveColdAfterDays": 29},
            "no sooner than 30 days",
        ),
        ({"tasks:archiveColdAfterDays": -1}, "archiveColdAfterDays is -1"),
        ({"tasks:approvalQueueShards": 0}, "approvalQueueShards is 0"),
        ({"tasks:approvalQueueShards": 17}, "approvalQueueShards is 17: .* from 1 to 16"),
    ],
)
def test_bad_values_stop_the_program(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _from_pulumi("prod", **overrides)


def test_archiving_is_per_stack_and_off_unless_a_stack_says() -> None:
    dev, prod = _from_pulumi("dev"), _from_pulumi("prod")
    assert (dev.archive_completed_after_days, prod.archive_completed_after_days) == (7, 30)
    assert (dev.archive_cold_storage_class, dev.archive_cold_after_days) == ("STANDARD_IA", 30)
    assert (prod.archive_cold_storage_class, prod.archive_cold_after_days) == ("GLACIER_IR", 90)
    assert StackConfig(stack="x", region="r").archive_completed_after_days == 0  # never
    assert (
        _from_pulumi(
            "dev",
            **{"tasks:archiveColdStorageClass": "GLACIER_IR", "tasks:archiveColdAfterDays": 0},
        ).archive_cold_after_days
        == 0
    )


def test_only_the_projects_namespace_is_read() -> None:
    with pytest.raises(ValueError, match="namespace 'aws'"):
        contextvars.Context().run(
            lambda: StackConfig.from_pulumi(pulumi.Config("aws"), stack="dev", region=None)
        )


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown config key"):
        StackConfig.from_values("dev", {"tasks:lambdaMemory": 512})


# -- cold-start mode ----------------------------------------------------------------------------


def test_dev_has_no_cold_start_mode_and_prod_uses_snapstart() -> None:
    assert _from_pulumi("dev").http_cold_start == ColdStart("none", 0)
    assert _from_pulumi("prod").http_cold_start == ColdStart("snapstart", 0)
    provisioned = _from_pulumi(
        "prod", **{"tasks:coldStart": "provisioned", "tasks:provisionedConcurrency": 5}
    )
    assert provisioned.http_cold_start == ColdStart("provisioned", 5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"tasks:coldStart": "warm"},
            "tasks:coldStart is 'warm': it must be one of none, snapstart, provisioned",
        ),
        (
            {"tasks:coldStart": "provisioned"},
            "tasks:coldStart is provisioned, so tasks:provisionedConcurrency must say how many "
            "execution environments to keep initialised \\(at least 1\\), but it is not set",
        ),
        (
            {"tasks:coldStart": "provisioned", "tasks:provisionedConcurrency": -2},
            "tasks:provisionedConcurrency must say how many .* but it is -2",
        ),
        (
            {"tasks:coldStart": "none", "tasks:provisionedConcurrency": 3},
            "tasks:provisionedConcurrency is 3, but tasks:coldStart is none: a count is only "
            "used with tasks:coldStart provisioned",
        ),
        (
            {"tasks:coldStart": "snapstart", "tasks:provisionedConcurrency": 3},
            "tasks:coldStart is snapstart and tasks:provisionedConcurrency is 3: SnapStart and "
            "provisioned concurrency cannot be combined on one function",
        ),
        (
            {"tasks:coldStart": "provisioned", "tasks:provisionedConcurrency": 101},
            "tasks:provisionedConcurrency is 101, more than tasks:reservedConcurrency \\(100\\)",
        ),
    ],
)
def test_a_cold_start_mode_aws_would_refuse_stops_the_program(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _from_pulumi("prod", **overrides)


def test_provisioning_is_bounded_only_by_a_reservation_that_exists() -> None:
    unreserved = {"tasks:reservedConcurrency": -1, "tasks:coldStart": "provisioned"}
    assert _from_pulumi("prod", **unreserved, **{"tasks:provisionedConcurrency": 500})
    assert _from_pulumi(
        "prod", **{"tasks:coldStart": "provisioned", "tasks:provisionedConcurrency": 100}
    )


@pytest.mark.parametrize(
    ("mode", "count", "message"),
    [
        ("warm", 0, "cold start mode is 'warm'"),
        ("provisioned", 0, "provisioned must say how many"),
        ("snapstart", 2, "cannot be combined"),
        ("none", 1, "a count is only used with cold start mode provisioned"),
    ],
)
def test_the_manifests_cold_start_modes_are_checked_the_same_way(
    mode: str, count: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ColdStart(mode, count)


@pytest.mark.parametrize("generations", [[], [0], [1, 1], [1, 2, 3], ["2"], [True]], ids=repr)
def test_cursor_key_generations_are_one_or_two_distinct_positive_integers(
    generations: list[object],
) -> None:
    with pytest.raises(ValueError, match=r"tasks:cursorKeyGenerations is .*one or two distinct"):
        _from_pulumi("dev", **{"tasks:cursorKeyGenerations": generations})


def test_a_rotation_lists_the_signing_generation_first() -> None:
    assert _from_pulumi("dev").cursor_key_generations == (1,)
    rotating = _from_pulumi("dev", **{"tasks:cursorKeyGenerations": [2, 1]})
    assert rotating.cursor_key_generations == (2, 1)


# -- Function URLs ------------------------------------------------------------------------------


def test_each_stack_chooses_its_function_urls_and_the_downloads_bound() -> None:
    dev, prod = _from_pulumi("dev"), _from_pulumi("prod")
    assert (dev.function_urls, dev.download_concurrency) == (("api", "download"), 5)
    # prod: the download only (no other path); the API's backup URL stays off
    assert (prod.function_urls, prod.download_concurrency) == (("download",), 20)
    download = manifest.function("download")
    assert (dev.reserved_for(download), prod.reserved_for(download)) == (5, 20)
    assert prod.reserved_for(manifest.function("api")) == prod.reserved_concurrency
    assert prod.reserved_for(manifest.function("stats")) == -1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"tasks:functionUrls": ["download", "stats"]},
            "tasks:functionUrls names stats: only a function stack/manifest.py gives a Function "
            "URL can have one here \\(api, download\\)",
        ),
        ({"tasks:functionUrls": ["downlaod"]}, "tasks:functionUrls names downlaod: only"),
        (
            {"tasks:functionUrls": ["download", "download"]},
            "tasks:functionUrls is \\['download', 'download'\\]: it names a function twice",
        ),
        (
            {"tasks:functionUrls": {"api": True}},
            "tasks:functionUrls is \\{'api': True\\}: it must be a list of function names",
        ),
        ({"tasks:downloadConcurrency": 0}, "tasks:downloadConcurrency is 0: it must be -1"),
        ({"tasks:downloadConcurrency": -5}, "tasks:downloadConcurrency is -5"),
        (
            {"tasks:downloadConcurrency": -1},
            "tasks:functionUrls gives download a public URL in prod, but "
            "tasks:downloadConcurrency is -1",
        ),
        (
            {"tasks:functionUrls": ["download", "api"], "tasks:reservedConcurrency": -1},
            "tasks:functionUrls gives api a public URL in prod, but tasks:reservedConcurrency "
            "is -1",
        ),
        (
            {"tasks:corsAllowOrigins": ["https://tasks.example.com", "*"]},
            "prod must not allow CORS from '\\*' \\(tasks:corsAllowOrigins is the API's, the "
            "bucket's and every Function URL's\\)",
        ),
    ],
)
def test_function_url_settings_aws_or_prod_would_regret_stop_the_program(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _from_pulumi("prod", **overrides)


def test_a_string_is_not_a_list_of_one_name() -> None:
    """Pulumi refuses a string where JSON is expected; the stack file's reader must too."""
    with pytest.raises(ValueError, match="tasks:functionUrls is 'download': it must be a list"):
        StackConfig.from_values("dev", {"tasks:functionUrls": "download"})


def test_outside_prod_a_url_may_go_unbounded() -> None:
    dev = _from_pulumi("dev", **{"tasks:downloadConcurrency": -1, "tasks:functionUrls": []})
    assert (dev.function_urls, dev.download_concurrency) == ((), -1)


# -- auto-approval rules ------------------------------------------------------------------------


def test_dev_names_a_leads_rule_and_prod_none() -> None:
    dev, prod = _from_pulumi("dev"), _from_pulumi("prod")
    assert [(r.name, r.decided_by) for r in dev.auto_approval_rules] == [("leads", "auto:leads")]
    assert prod.auto_approval_rules == ()
    assert (dev.auto_approval_text, prod.auto_approval_text) == ('["leads: high by leads"]', "[]")


def test_rules_keep_their_order_and_their_canonical_text() -> None:
    config = _from_pulumi(
        "prod",
        **{"tasks:autoApprove": ["ops: high, critical by ops", "leads:high by oncall,leads"]},
    )
    assert [r.name for r in config.auto_approval_rules] == ["ops", "leads"]
    assert config.auto_approval_text == (
        '["ops: high, critical by ops","leads: high by leads, oncall"]'
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            ["leads high by leads"],
            "tasks:autoApprove: rule 1 \\('leads high by leads'\\): expected '<name>: "
            "<priority>\\[, <priority>...\\] by <group>\\[, <group>...\\]', e.g. 'leads: high by "
            "leads, oncall'",
        ),
        (["leads: low by leads"], "rule 1 .*low tasks need no approval"),
        (["leads: urgent by leads"], "rule 1 .*unknown priority 'urgent'"),
        (["leads: high by leads", "leads: critical by ops"], "rules 1 and 2 are both named"),
        ([{"name": "leads"}], "rule 1 .*a rule is a string"),
    ],
)
def test_a_rule_that_cannot_mean_anything_stops_the_program(rules: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _from_pulumi("dev", **{"tasks:autoApprove": rules})


def test_rules_that_would_crowd_the_api_functions_environment_are_refused() -> None:
    """Half of Lambda's 4 KB for the rules; the whole environment is checked when the program
    runs (infra/limits.py)."""
    rules = [f"rule-{n:03}: high, critical by group-{n:03}" for n in range(60)]
    with pytest.raises(ValueError, match=r"its 60 rules take \d+ bytes .* more than the 2048"):
        _from_pulumi("dev", **{"tasks:autoApprove": rules})
    assert _from_pulumi("dev", **{"tasks:autoApprove": rules[:40]})


def test_a_string_is_not_a_list_of_one_rule() -> None:
    """Pulumi refuses a string where JSON is expected; the stack file's reader must too."""
    with pytest.raises(ValueError, match="tasks:autoApprove: a list of rules like"):
        StackConfig.from_values("dev", {"tasks:autoApprove": "leads: high by leads"})


def test_the_approvers_queue_is_sharded_in_dev_only() -> None:
    dev, prod = _from_pulumi("dev"), _from_pulumi("prod")
    assert (dev.approval_queue_shards, prod.approval_queue_shards) == (4, 1)
    assert StackConfig(stack="x", region="r").approval_queue_shards == 1
