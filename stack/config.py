"""The stack's configuration, parsed once into a frozen, validated `StackConfig`.

`Pulumi.yaml` declares the keys (types, descriptions, defaults); `Pulumi.<stack>.yaml` holds
values only. Components receive a `StackConfig` and never call `pulumi.Config()` themselves.
The local platform reads the same files through `StackConfig.from_stack_file`, so `make dev`
applies the stack's throttling, CORS and body limit; the Pulumi program reads them through
`StackConfig.from_pulumi(pulumi.Config(), ...)`, once, in `__main__.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from stack import manifest
from stack.cold_start import ColdStart, cold_start_problem
from stack.manifest import AUTO_APPROVE_VARIABLE, Function
from taskcore.approval_queue import MAX_SHARDS
from taskcore.auto_approval import (
    EXAMPLE,
    GRAMMAR,
    AutoApprovalRule,
    parse_rules,
    rules_to_text,
)

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "tasks"


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, not {value}")


# The values CloudWatch Logs accepts for a retention period, in days.
LOG_RETENTION_DAYS = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)


def _retention(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{attribute.name} must be one of {sorted(LOG_RETENTION_DAYS)}, not {value}"
        )


def _origins(_instance: Any, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for origin in value:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"CORS origin {origin!r} must start with http:// or https://")


def _audience(instance: StackConfig, _attribute: attrs.Attribute[Any], value: str) -> None:
    if instance.jwt_issuer and not value:
        raise ValueError("an external jwtIssuer needs its jwtAudience")


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _email(_instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and not EMAIL.fullmatch(value):
        raise ValueError(f"{attribute.name} must be an email address, not {value!r}")


def _custom_domain(instance: StackConfig, _attribute: attrs.Attribute[Any], value: str) -> None:
    if bool(value) != bool(instance.domain_name):
        raise ValueError("domainName and certificateArn are set together, or neither")


def _extra_tags(_instance: Any, _attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    reserved = {"Application", "Environment", "Component"}
    for key, tag in value.items():
        if key in reserved or key.lower().startswith("aws:"):
            raise ValueError(f"tag {key!r} is set by the program (or reserved by AWS): not in tags")
        if not isinstance(tag, str):
            raise ValueError(f"tag {key!r} must be a string, not {tag!r}")


def _generations(_instance: Any, _attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    valid = all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value)
    if not (1 <= len(value) <= 2 and valid and len(set(value)) == len(value)):
        raise ValueError(
            f"tasks:cursorKeyGenerations is {list(value)!r}: it must list one or two distinct "
            "key generations (positive integers), the first signing cursors and the second "
            "still accepted, e.g. [2, 1] (docs/deploying.md: rotating the cursor key)"
        )


def _names(value: Any) -> Any:
    """A list as a tuple; anything else as it is, for the validator to refuse (a string is not
    turned into its characters)."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _function_urls(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    """Names of manifest functions that declare a Function URL (`Function.url`), each once."""
    with_url = [f.name for f in manifest.FUNCTIONS if f.url is not None]
    names = value if isinstance(value, tuple) else ()
    if not isinstance(value, tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"tasks:functionUrls is {value!r}: it must be a list of function names, e.g. "
            f"[download] (functions with a Function URL: {', '.join(with_url)})"
        )
    if unknown := [n for n in names if n not in with_url]:
        raise ValueError(
            f"tasks:functionUrls names {', '.join(unknown)}: only a function stack/manifest.py "
            f"gives a Function URL can have one here ({', '.join(with_url) or 'none'})"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"tasks:functionUrls is {list(names)!r}: it names a function twice")


def _download_concurrency(_instance: Any, _attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or value >= 1):
        raise ValueError(
            f"tasks:downloadConcurrency is {value!r}: it must be -1 (no reservation) or at "
            "least 1 (the download function's reserved concurrency, the most execution "
            "environments anyone calling its public URL can keep busy); 0 would stop the "
            "download altogether"
        )


# Lambda: "Function environment variables: 4 KB, for all environment variables associated with
# the function, in aggregate" (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html;
# the guide's KB is 1024 bytes), measured as "the variables object [...] stored in the function's
# configuration [...] key names, values, quotes, commas, and brackets", without white space, one
# to four bytes a character (https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-deployment.html).
LAMBDA_ENVIRONMENT_MAX_BYTES = 4096
AUTO_APPROVE_MAX_BYTES = LAMBDA_ENVIRONMENT_MAX_BYTES // 2
"""What the rules may take of the API function's environment: half, leaving the other half
for its other variables (names, ARNs, the issuer: a few hundred bytes today). infra/limits.py
checks the whole environment of every function against the 4 KB when the program runs."""


def environment_size(variables: Mapping[str, str]) -> int:
    """An environment's size as Lambda measures it (above)."""
    compact = json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
    return len(compact.encode("utf-8"))


def _auto_approve(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    try:
        rules = parse_rules(value)
    except ValueError as error:
        raise ValueError(
            f"tasks:autoApprove: {error}. Each rule is a string {GRAMMAR}, e.g. {EXAMPLE} "
            "(Pulumi.yaml)"
        ) from None
    size = environment_size({AUTO_APPROVE_VARIABLE: rules_to_text(rules)})
    if size > AUTO_APPROVE_MAX_BYTES:
        raise ValueError(
            f"tasks:autoApprove: its {len(rules)} rules take {size} bytes of the API function's "
            f"environment ({AUTO_APPROVE_VARIABLE}), more than the {AUTO_APPROVE_MAX_BYTES} "
            f"they may (Lambda allows {LAMBDA_ENVIRONMENT_MAX_BYTES} for all its variables): "
            "merge rules (a rule names several priorities and groups) or shorten their names"
        )


def _archive_days(_instance: Any, _attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"tasks:archiveCompletedAfterDays is {value!r}: it must be a whole number of days, "
            "0 (never archive) or more: a completed task leaves the table for its owner's "
            "archive that long after its completion"
        )


def _approval_queue_shards(_instance: Any, _attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        raise ValueError(
            f"tasks:approvalQueueShards is {value!r}: it must be a whole number from 1 to "
            f"{MAX_SHARDS}, the approvers' queue's index partitions (a page of the queue reads "
            "each of them; docs/scale.md)"
        )


ARCHIVE_COLD_CLASSES = {"STANDARD_IA": 30, "GLACIER_IR": 0}
"""The colder classes the archive may move to, each with the fewest days after an object's
creation S3 accepts for the transition. Both serve a GET at once (a presigned download keeps
working); GLACIER and DEEP_ARCHIVE need a restore first, so they are not offered.

S3 User Guide, "Transitioning objects using Amazon S3 Lifecycle", constraints: "Before you
transition objects to S3 Standard-IA or S3 One Zone-IA, you must store them for at least 30
days in Amazon S3. For example, you cannot create a Lifecycle rule to transition objects to the
S3 Standard-IA storage class one day after you create them."
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html);
the S3 API Reference (`Transition.Days`): for GLACIER_IR "valid values are 0 or positive
integers" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Transition.html)."""


def _cold_class(_instance: Any, _attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ARCHIVE_COLD_CLASSES:
        raise ValueError(
            f"tasks:archiveColdStorageClass is {value!r}: one of "
            f"{', '.join(sorted(ARCHIVE_COLD_CLASSES))} (classes a presigned download reads at "
            "once; GLACIER and DEEP_ARCHIVE would need a restore first)"
        )


def _cold_days(instance: StackConfig, _attribute: attrs.Attribute[Any], value: int) -> None:
    least = ARCHIVE_COLD_CLASSES.get(instance.archive_cold_storage_class, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(
            f"tasks:archiveColdAfterDays is {value!r}: S3 moves an object to "
            f"{instance.archive_cold_storage_class} no sooner than {least} days after its "
            "creation (S3 refuses a lifecycle rule that says sooner)"
        )


def _frozen_tags(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(sorted((value or {}).items()))


def _cold_start(instance: StackConfig, _attribute: attrs.Attribute[Any], value: int) -> None:
    """`tasks:coldStart` with `tasks:provisionedConcurrency`, and the provisioned count against
    the function's reservation (AWS refuses to provision more than a function reserves)."""
    keys = {"mode_key": "tasks:coldStart", "count_key": "tasks:provisionedConcurrency"}
    if problem := cold_start_problem(instance.cold_start, value, **keys):
        raise ValueError(problem)
    reserved = instance.reserved_concurrency
    if instance.cold_start == "provisioned" and 0 <= reserved < value:
        raise ValueError(
            f"tasks:provisionedConcurrency is {value}, more than tasks:reservedConcurrency "
            f"({reserved}): AWS refuses to provision more concurrency than a function reserves. "
            "Lower tasks:provisionedConcurrency, or raise tasks:reservedConcurrency (-1 reserves "
            "none)"
        )


class ConfigSource(Protocol):
    """What `pulumi.Config` offers (typed getters over `project:key` values)."""

    @property
    def name(self) -> str: ...
    def get(self, key: str) -> str | None: ...
    def get_int(self, key: str) -> int | None: ...
    def get_bool(self, key: str) -> bool | None: ...
    def get_object(self, key: str) -> Any: ...


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


@attrs.frozen(kw_only=True)
class StackConfig:
    stack: str
    region: str
    log_retention_days: int = attrs.field(default=14, validator=_retention)
    point_in_time_recovery: bool = False
    deletion_protection: bool = False
    throttle_rate_limit: int = attrs.field(default=50, validator=_positive)
    throttle_burst_limit: int = attrs.field(default=100, validator=_positive)
    cors_allow_origins: tuple[str, ...] = attrs.field(
        default=("http://localhost:3000",), converter=tuple, validator=_origins
    )
    lambda_memory_mb: int = attrs.field(default=1024, validator=_positive)
    reserved_concurrency: int = -1
    cold_start: str = "none"
    provisioned_concurrency: int = attrs.field(default=0, validator=_cold_start)
    max_body_bytes: int = attrs.field(default=65536, validator=_positive)
    cursor_key_generations: tuple[int, ...] = attrs.field(
        default=(1,), converter=tuple, validator=_generations
    )
    # Which functions' Function URLs (stack/manifest.py's `Function.url`) this stack creates,
    # and the download function's reserved concurrency: what abuse of its URL can cost at most.
    function_urls: tuple[str, ...] = attrs.field(
        default=("download",), converter=_names, validator=_function_urls
    )
    download_concurrency: int = attrs.field(default=10, validator=_download_concurrency)
    approval_timeout_hours: int = attrs.field(default=72, validator=_positive)
    # Auto-approval rules, in order (the first match wins), in `taskcore.auto_approval`'s grammar.
    auto_approve: tuple[str, ...] = attrs.field(
        default=(), converter=_names, validator=_auto_approve
    )
    # Archiving (docs/archive.md): a completed task's TTL, and when the archive's objects move
    # to a colder storage class.
    archive_completed_after_days: int = attrs.field(default=0, validator=_archive_days)
    archive_cold_storage_class: str = attrs.field(default="STANDARD_IA", validator=_cold_class)
    archive_cold_after_days: int = attrs.field(default=30, validator=_cold_days)
    # The approvers' queue's index partitions (docs/scale.md): raise it freely; lowering it
    # hides the entries of the dropped shards until their tasks are written again.
    approval_queue_shards: int = attrs.field(default=1, validator=_approval_queue_shards)
    alarm_email: str = ""
    # Subscribed to the notifications' topic, with a filter policy that sends it what is
    # addressed to the approvers (stack/manifest.py `APPROVERS_FILTER`); empty: none.
    approvers_email: str = attrs.field(default="", validator=_email)
    alarm_p99_latency_ms: int = attrs.field(default=1000, validator=_positive)
    jwt_issuer: str = ""
    jwt_audience: str = attrs.field(default="", validator=_audience)
    domain_name: str = ""
    certificate_arn: str = attrs.field(default="", validator=_custom_domain)
    tags: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_tags, validator=_extra_tags, hash=False
    )

    @property
    def is_production(self) -> bool:
        return self.stack == "prod"

    @property
    def auto_approval_rules(self) -> tuple[AutoApprovalRule, ...]:
        return parse_rules(self.auto_approve)

    @property
    def auto_approval_text(self) -> str:
        """The rules as the API function receives them (`approval.rules`, `AUTO_APPROVE`)."""
        return rules_to_text(self.auto_approval_rules)

    @property
    def http_cold_start(self) -> ColdStart:
        """The cold-start mode of the function(s) serving HTTP routes (the others take the
        manifest's)."""
        return ColdStart(self.cold_start, self.provisioned_concurrency)

    def memory_for(self, function: Function) -> int:
        """The memory `function` is deployed with: the stack's `tasks:lambdaMemoryMb` for the
        function(s) serving HTTP routes, the manifest's for the others."""
        return self.lambda_memory_mb if function.routes else function.memory_mb

    def reserved_for(self, function: Function) -> int:
        """The reserved concurrency of `function` (-1: none): the stack's
        `tasks:reservedConcurrency` for the function(s) serving HTTP routes, its
        `tasks:downloadConcurrency` for a web function (the download, behind the Lambda Web
        Adapter), none for the others."""
        if function.routes:
            return self.reserved_concurrency
        if function.web is not None:
            return self.download_concurrency
        return -1

    @staticmethod
    def reservation_key(function: Function) -> str | None:
        """The config key `reserved_for` reads for `function` (None: no key reserves any)."""
        if function.routes:
            return "tasks:reservedConcurrency"
        return "tasks:downloadConcurrency" if function.web is not None else None

    def _check_production(self) -> None:
        """What prod refuses whatever the defaults: CORS from anywhere (the API's, the bucket's
        and every Function URL's origins are `tasks:corsAllowOrigins`), and a public Function
        URL on a function that reserves no concurrency (nothing would bound its cost)."""
        if "*" in self.cors_allow_origins:
            raise ValueError(
                "prod must not allow CORS from '*' (tasks:corsAllowOrigins is the API's, the "
                "bucket's and every Function URL's)"
            )
        functions = {f.name: f for f in manifest.FUNCTIONS}
        for name in self.function_urls:
            function = functions[name]
            if self.reserved_for(function) >= 0:
                continue
            key = self.reservation_key(function)
            unbounded = f"{key} is -1" if key else "no config key reserves concurrency for it"
            raise ValueError(
                f"tasks:functionUrls gives {name} a public URL in prod, but {unbounded}: it "
                "needs a reservation, the most execution environments (and so the most cost) "
                "calls to the URL can take"
            )

    @classmethod
    def from_values(cls, stack: str, values: Mapping[str, Any]) -> StackConfig:
        """From `project:key` values as Pulumi holds them (camelCase keys)."""
        fields = {a.name: a for a in attrs.fields(cls)}
        kwargs: dict[str, Any] = {"stack": stack, "region": values.get("aws:region", "")}
        for key, value in values.items():
            namespace, _, name = key.partition(":")
            if namespace != PROJECT:
                continue
            snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
            if snake not in fields:
                raise ValueError(f"unknown config key {key!r}")
            kwargs[snake] = value
        config = cls(**kwargs)
        if config.is_production:
            config._check_production()
        return config

    @classmethod
    def from_pulumi(cls, config: ConfigSource, *, stack: str, region: str | None) -> StackConfig:
        """From the program's `pulumi.Config()` (the project namespace), typed per field."""
        if config.name != PROJECT:
            raise ValueError(f"config namespace {config.name!r}: expected {PROJECT!r}")
        readers: dict[str, Callable[[str], Any]] = {
            "int": config.get_int,
            "bool": config.get_bool,
            "str": config.get,
        }
        values: dict[str, Any] = {"aws:region": region or ""}
        for field in attrs.fields(cls):
            if field.name in {"stack", "region"}:
                continue
            key = _camel(field.name)
            value = readers.get(str(field.type), config.get_object)(key)
            if value is not None:
                values[f"{PROJECT}:{key}"] = value
        return cls.from_values(stack, values)

    @classmethod
    def from_stack_file(cls, stack: str, root: Path = ROOT) -> StackConfig:
        import yaml  # here: the handlers import the manifest, which needs no YAML (cold start)

        document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
        return cls.from_values(stack, document.get("config", {}))
