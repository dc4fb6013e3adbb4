"""The stack's configuration, parsed once into a frozen, validated `StackConfig`.

`Pulumi.yaml` declares the keys (types, descriptions, defaults); `Pulumi.<stack>.yaml` holds
values only. Components receive a `StackConfig` and never call `pulumi.Config()` themselves.
The local platform reads the same files through `StackConfig.from_stack_file`, so `make dev`
applies the stack's throttling, CORS and body limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "tasks"


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, not {value}")


def _origins(_instance: Any, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for origin in value:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"CORS origin {origin!r} must start with http:// or https://")


@attrs.frozen(kw_only=True)
class StackConfig:
    stack: str
    region: str
    log_retention_days: int = attrs.field(default=14, validator=_positive)
    point_in_time_recovery: bool = False
    deletion_protection: bool = False
    throttle_rate_limit: int = attrs.field(default=50, validator=_positive)
    throttle_burst_limit: int = attrs.field(default=100, validator=_positive)
    cors_allow_origins: tuple[str, ...] = attrs.field(
        default=("http://localhost:3000",), converter=tuple, validator=_origins
    )
    lambda_memory_mb: int = attrs.field(default=1024, validator=_positive)
    reserved_concurrency: int = -1
    max_body_bytes: int = attrs.field(default=65536, validator=_positive)
    approval_timeout_hours: int = attrs.field(default=72, validator=_positive)
    alarm_email: str = ""
    alarm_p99_latency_ms: int = attrs.field(default=1000, validator=_positive)
    jwt_issuer: str = ""
    jwt_audience: str = ""

    @property
    def is_production(self) -> bool:
        return self.stack == "prod"

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
        if config.is_production and "*" in config.cors_allow_origins:
            raise ValueError("prod must not allow CORS from '*'")
        return config

    @classmethod
    def from_stack_file(cls, stack: str, root: Path = ROOT) -> StackConfig:
        document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
        return cls.from_values(stack, document.get("config", {}))
