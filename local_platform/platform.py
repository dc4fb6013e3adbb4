"""The local platform: the same handlers as on AWS, on a laptop, with no Docker and no account.

- DynamoDB: Amazon's DynamoDB Local (real engine), data kept under `.dynamodb/` across runs;
- S3: an in-process moto server (no local engine of AWS's own exists);
- the API: `local_platform.gateway`, which turns HTTP into API Gateway payload-2.0 events,
  verifies JWTs like the JWT authorizer and applies the stack's throttling and CORS.

Tables and buckets are created from the same definitions infra deploys; each function's
environment is resolved from the manifest, as infra resolves it to real resource names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from handlers.manifest import FUNCTIONS, Function, Resource
from infra.config import StackConfig
from local_platform.dynamodb_local import DynamoDBLocal, free_port
from taskcore.adapters.dynamodb import create_table

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local"
TABLE = "tasks-local"
BUCKET = "tasks-local-attachments"
REGION = "us-east-1"
log = logging.getLogger("local_platform")


def persistent_secret(path: Path) -> str:
    """A random secret kept across runs, so cursors handed out stay valid after a restart."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


@attrs.define
class Services:
    """The running AWS stand-ins and the values that wire the handlers to them."""

    dynamodb_endpoint: str
    s3_endpoint: str
    cursor_secret: str
    config: StackConfig
    storage: str = "in memory"

    def resolve(self, resource: Resource) -> str:
        values: dict[Resource, str] = {
            "table.name": TABLE,
            "bucket.name": BUCKET,
            "bus.name": "tasks-local-bus",
            "cursor.secret": self.cursor_secret,
            "stage.name": "local",
        }
        return values[resource]

    def environment(self, function: Function) -> dict[str, str]:
        """The function's environment as the manifest declares it, plus local endpoints."""
        env = {name: self.resolve(resource) for name, resource in function.environment.items()}
        env |= {
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "S3_ENDPOINT": self.s3_endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "MAX_BODY_BYTES": str(self.config.max_body_bytes),
            "POWERTOOLS_SERVICE_NAME": f"tasks-{function.name}",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
        return env


def _client(service: Literal["dynamodb", "s3"], endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(proxies={}, s3={"addressing_style": "path"}),
    )


def ensure_table(endpoint: str) -> bool:
    client = _client("dynamodb", endpoint)
    if TABLE in client.list_tables()["TableNames"]:
        return False
    create_table(client, TABLE)
    return True


def ensure_bucket(endpoint: str, config: StackConfig) -> None:
    client = _client("s3", endpoint)
    client.create_bucket(Bucket=BUCKET)
    # Browsers upload with the presigned POST; allow the stack's origins, as infra will.
    client.put_bucket_cors(
        Bucket=BUCKET,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": list(config.cors_allow_origins),
                    "AllowedMethods": ["GET", "POST"],
                    "AllowedHeaders": ["*"],
                    "MaxAgeSeconds": 600,
                }
            ]
        },
    )


@contextlib.contextmanager
def running(
    *,
    stack: str = "dev",
    db_path: Path | None = ROOT / ".dynamodb",
    dynamodb_port: int | None = None,
    s3_port: int | None = None,
) -> Iterator[Services]:
    """Start DynamoDB Local and the S3 stand-in, create the table and bucket; stop on exit."""
    config = StackConfig.from_stack_file(stack)
    s3_port = s3_port or free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    with DynamoDBLocal(port=dynamodb_port or free_port(), db_path=db_path) as dynamodb:
        moto.start()
        try:
            services = Services(
                dynamodb_endpoint=dynamodb.endpoint_url,
                s3_endpoint=f"http://127.0.0.1:{s3_port}",
                cursor_secret=persistent_secret(STATE / "cursor-secret"),
                config=config,
                storage=f"data in {_shown(db_path)}/" if db_path else "in memory",
            )
            created = ensure_table(services.dynamodb_endpoint)
            log.info("table %s %s", TABLE, "created" if created else "kept from the last run")
            ensure_bucket(services.s3_endpoint, config)
            yield services
        finally:
            moto.stop()


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def apply_environment(env: Mapping[str, str]) -> None:
    """Handlers run in this process: give them their environment before they are imported."""
    os.environ.update(env)


def api_function() -> Function:
    return next(f for f in FUNCTIONS if f.routes)
