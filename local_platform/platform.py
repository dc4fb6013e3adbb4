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
import importlib
import json
import logging
import os
import queue
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import attrs
import boto3
import httpx
from botocore.config import Config

from local_platform.auth import DEV_AUDIENCE, DEV_ISSUER
from local_platform.bus import Invoke, LocalBus
from local_platform.children import Record, die_with_parent
from local_platform.dynamodb_local import DynamoDBLocal, free_port
from local_platform.events_relay import EventsRelay
from local_platform.schedules import LocalScheduler
from local_platform.streams import StreamPoller
from local_platform.ttl import LocalTtl
from stack.config import LAMBDA_ENVIRONMENT_MAX_BYTES, StackConfig, environment_size
from stack.manifest import (
    APPROVERS_FILTER,
    FUNCTIONS,
    WORKFLOWS,
    Function,
    Resource,
    Workflow,
)
from stack.workflows import WORKFLOW_SOURCE
from taskcore.adapters.dynamodb import (
    DynamoTaskRepository,
    create_table,
    from_item,
    table_definition,
)
from taskcore.events import EVENT_SOURCE

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
    """The cursor-signing key: put in the secret on moto's Secrets Manager, read from there by
    the API function as on AWS (`handlers.secrets`)."""
    config: StackConfig
    storage: str = "in memory"
    workflows: dict[str, tuple[Workflow, str]] = attrs.field(factory=dict)
    """Workflow name -> (workflow, state machine ARN) on the moto server."""
    tap_queue: str = ""
    relay: EventsRelay | None = None
    """The EventBridge endpoint the handlers publish to (relays to moto, feeds the local bus)."""
    approval_timeout_s: int | None = None  # overrides the stack's approvalTimeoutHours
    cursor_secret_arn: str = ""
    """The secret on moto holding `cursor_secret` (`ensure_cursor_secret`)."""
    topic_arn: str = ""
    """The notifications' topic on moto (`ensure_topic`)."""
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    jwks_uri: str = ""
    """Where the functions that verify tokens themselves fetch the issuer's JWKS (the gateway
    serves it); empty: under the issuer's URL, as on AWS."""
    clock_offset: timedelta = timedelta(0)
    """How far the platform's clock is from the machine's (`--clock-offset`): what the
    emulated background processes see as now (a scheduled event's `time`; the emulated TTL's
    clock: with 8d, a completed task archived a week after its completion is archived now)."""
    manual_schedules: bool = False
    """Schedules fire only when asked (`--manual-schedules`, SIGUSR1), never on their own."""
    scheduler: LocalScheduler | None = None
    """The scheduled rules' emulation, while the events run (`event_plumbing`)."""
    ttl_interval_s: float = 10.0
    """Seconds between the emulated TTL's passes (`local_platform.ttl`); 0: only on demand."""
    ttl: LocalTtl | None = None
    """The emulated TTL, while the event plumbing runs (`event_plumbing`)."""
    kms_key_arn: str = ""
    """The stack's key, a KMS key on moto (`ensure_key`): what archive objects are written
    with."""

    def resolve(self, resource: Resource) -> str:
        values: dict[Resource, str] = {
            "table.name": TABLE,
            "bucket.name": BUCKET,
            "bus.name": "tasks-local-bus",
            "cursor.secret_arn": self.cursor_secret_arn,
            "stage.name": "local",
            "api.max_body_bytes": str(self.config.max_body_bytes),
            "auth.issuer": self.issuer,
            "auth.audience": self.audience,
            "topic.arn": self.topic_arn,
            "approval.timeout": str(
                self.approval_timeout_s or self.config.approval_timeout_hours * 3600
            ),
            "approval.rules": self.config.auto_approval_text,
            "archive.after_days": str(self.config.archive_completed_after_days),
            "approval.shards": str(self.config.approval_queue_shards),
            "key.arn": self.kms_key_arn,
        }
        return values[resource]

    def environment(self, function: Function) -> dict[str, str]:
        """The function's environment as the manifest declares it, plus local endpoints. What
        AWS would receive (the declared part) is held to Lambda's 4 KB, as on AWS."""
        env = {name: self.resolve(resource) for name, resource in function.environment.items()}
        if (size := environment_size(env)) > LAMBDA_ENVIRONMENT_MAX_BYTES:
            raise ValueError(
                f"{function.name}: its environment takes {size} bytes, more than the "
                f"{LAMBDA_ENVIRONMENT_MAX_BYTES} Lambda allows (stack/config.py)"
            )
        if "JWT_ISSUER" in env and self.jwks_uri:
            env["JWKS_URI"] = self.jwks_uri
        env |= {
            "DYNAMODB_ENDPOINT": self.dynamodb_endpoint,
            "S3_ENDPOINT": self.s3_endpoint,
            # One moto server serves S3, EventBridge, SFN and SQS; EventBridge via the relay.
            "EVENTS_ENDPOINT": self.relay.url if self.relay else self.s3_endpoint,
            "STEPFUNCTIONS_ENDPOINT": self.s3_endpoint,
            "SECRETSMANAGER_ENDPOINT": self.s3_endpoint,
            "SNS_ENDPOINT": self.s3_endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_SERVICE_NAME": f"tasks-{function.name}",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
        return env


def _client(
    service: Literal[
        "dynamodb",
        "dynamodbstreams",
        "s3",
        "events",
        "sqs",
        "stepfunctions",
        "secretsmanager",
        "sns",
        "kms",
    ],
    endpoint: str,
) -> Any:
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
        for index in add_missing_indexes(endpoint, TABLE):
            log.info("table %s: index %s added (data kept from an older definition)", TABLE, index)
        return False
    create_table(client, TABLE)
    return True


def add_missing_indexes(endpoint: str, table: str) -> list[str]:
    """Create the global secondary indexes `table_definition()` has and a table kept from an
    earlier run lacks (as a deploy would: `UpdateTable`, one index at a time), then rewrite
    its tasks through the adapter, unchanged, so that those a new sparse index covers get its
    keys (the stream sees no change to derive an event from). Returns the indexes added."""
    client = _client("dynamodb", endpoint)
    definition = table_definition(table)
    described = client.describe_table(TableName=table)["Table"]
    present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    added = []
    for index in definition["GlobalSecondaryIndexes"]:
        if index["IndexName"] in present:
            continue
        keys = {key["AttributeName"] for key in index["KeySchema"]}
        client.update_table(
            TableName=table,
            AttributeDefinitions=[
                a for a in definition["AttributeDefinitions"] if a["AttributeName"] in keys
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        _wait_for_index(client, table, index["IndexName"])
        added.append(index["IndexName"])
    if added:
        repository = DynamoTaskRepository(table, endpoint_url=endpoint, region=REGION)
        pages = client.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="begins_with(sk, :task)",
            ExpressionAttributeValues={":task": {"S": "TASK#"}},
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page["Items"]:
                task = from_item(repository.models.task.from_raw_data(raw))
                repository.save(task, task.version)
    return added


def _wait_for_index(client: Any, table: str, index: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = client.describe_table(TableName=table)["Table"]
        status = next(
            i.get("IndexStatus")
            for i in described.get("GlobalSecondaryIndexes", [])
            if i["IndexName"] == index
        )
        if status == "ACTIVE":
            return
        time.sleep(0.2)
    raise RuntimeError(f"index {index} of {table} did not become active in {timeout_s} s")


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
    approval_timeout_s: int | None = None,
    clock_offset: timedelta = timedelta(0),
    manual_schedules: bool = False,
    ttl_interval_s: float = 10.0,
) -> Iterator[Services]:
    """Start DynamoDB Local and the S3 stand-in, create the table and bucket; stop on exit."""
    config = StackConfig.from_stack_file(stack)
    s3_port = s3_port or free_port()
    with DynamoDBLocal(
        port=dynamodb_port or free_port(),
        db_path=db_path,
        # A crashed engine comes back on its own (same port and data; an in-memory one gets
        # its table again), as `make dev` users would want.
        supervise=True,
        on_restart=lambda engine: ensure_table(engine.endpoint_url),
    ) as dynamodb:
        moto = start_moto(s3_port)
        record = Record(STATE / "platforms")
        record.write({"DynamoDB Local": dynamodb.pid or 0, "the moto server": moto.pid})
        relay = None
        try:
            services = Services(
                dynamodb_endpoint=dynamodb.endpoint_url,
                s3_endpoint=f"http://127.0.0.1:{s3_port}",
                cursor_secret=persistent_secret(STATE / "cursor-secret"),
                config=config,
                storage=f"data in {shown(db_path)}/" if db_path else "in memory",
                approval_timeout_s=approval_timeout_s,
                clock_offset=clock_offset,
                manual_schedules=manual_schedules,
                ttl_interval_s=ttl_interval_s,
            )
            created = ensure_table(services.dynamodb_endpoint)
            log.info("table %s %s", TABLE, "created" if created else "kept from the last run")
            ensure_bucket(services.s3_endpoint, config)
            services.cursor_secret_arn = ensure_cursor_secret(
                services.s3_endpoint, services.cursor_secret
            )
            services.topic_arn = ensure_topic(services.s3_endpoint, config)
            services.kms_key_arn = ensure_key(services.s3_endpoint)
            services.tap_queue = ensure_bus(services.s3_endpoint, services.resolve("bus.name"))
            relay = EventsRelay(
                upstream=services.s3_endpoint, bus_name=services.resolve("bus.name"), region=REGION
            ).start()
            services.relay = relay
            services.workflows = ensure_workflows(services)
            yield services
        finally:
            record.remove()
            if relay is not None:
                relay.stop()
            moto.terminate()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()


CURSOR_SECRET_NAME = "tasks-local-cursor-signing"


def ensure_cursor_secret(endpoint: str, key: str) -> str:
    """The cursor-signing secret on this platform's own (new) moto server, in the shape infra
    gives it (`{"current": key}`); its ARN. The key is kept across runs (`.local/`), so cursors
    handed out before a restart stay valid."""
    client = _client("secretsmanager", endpoint)
    value = json.dumps({"current": key})
    return str(client.create_secret(Name=CURSOR_SECRET_NAME, SecretString=value)["ARN"])


def ensure_key(endpoint: str) -> str:
    """The stack's KMS key, on this platform's own moto server: its ARN (the archiver writes
    archive objects with SSE-KMS under it, as on AWS)."""
    kms = _client("kms", endpoint)
    return str(kms.create_key(Description="tasks-local: the stack's key")["KeyMetadata"]["Arn"])


def start_moto(port: int) -> subprocess.Popen[bytes]:
    """moto's server in its own process: on a laptop's second core, not competing with the
    gateway and the handlers for this process's GIL (measured: creates went from ~33/s with
    moto in-process to several times that)."""
    env = {
        **os.environ,
        # Its Step Functions executor calls the services its states integrate with on the
        # moto server it assumes at localhost:$MOTO_PORT: this one.
        "MOTO_PORT": str(port),
    }
    process = subprocess.Popen(  # noqa: S603 - this interpreter, moto's module, fixed args
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: Ctrl-C reaches the platform only, which stops the bus and the
        # stream poller before it stops moto (else they would trip over a dead moto on exit).
        start_new_session=True,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - one prctl call, resolved before fork
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with {process.returncode} on port {port}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1, trust_env=False)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"moto's server did not answer on port {port} within 30 s")


TOPIC = "tasks-local-notifications"


def ensure_topic(endpoint: str, config: StackConfig) -> str:
    """The notifications' topic on moto, with the approvers' email subscription the stack
    config names, filtered as infra filters it (moto records it; it sends no email)."""
    sns = _client("sns", endpoint)
    arn = str(sns.create_topic(Name=TOPIC)["TopicArn"])
    if config.approvers_email:
        sns.subscribe(
            TopicArn=arn,
            Protocol="email",
            Endpoint=config.approvers_email,
            Attributes={"FilterPolicy": json.dumps(APPROVERS_FILTER)},
        )
    return arn


def ensure_bus(endpoint: str, bus_name: str) -> str:
    """The bus on moto, and a rule copying the state machine's events on it to a queue the
    local bus drains. The handlers' events (source `EVENT_SOURCE`) reach the local bus through
    the EventBridge relay instead, so the tap must not copy them too."""
    assert EVENT_SOURCE != WORKFLOW_SOURCE, "the tap tells the two apart by source"
    events, sqs = _client("events", endpoint), _client("sqs", endpoint)
    events.create_event_bus(Name=bus_name)
    queue_url = sqs.create_queue(QueueName=f"{bus_name}-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    pattern = {"source": [WORKFLOW_SOURCE]}
    events.put_rule(Name="tap", EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="tap", EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": arn["QueueArn"]}]
    )
    return str(queue_url)


def ensure_workflows(services: Services) -> dict[str, tuple[Workflow, str]]:
    """Each manifest workflow as a state machine on moto, run by its real executor."""
    endpoint = services.s3_endpoint
    # moto runs state machines only when told to (server mode: its config endpoint).
    httpx.post(
        f"{endpoint}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": True}},
        timeout=10,
        trust_env=False,
    ).raise_for_status()
    stepfunctions = _client("stepfunctions", endpoint)
    machines = {}
    for workflow in WORKFLOWS:
        module, name = workflow.definition.split(":")
        build = getattr(importlib.import_module(module), name)
        arguments: dict[str, Any] = {
            argument: services.resolve(resource)
            for argument, resource in workflow.arguments.items()
        }
        if "timeout_seconds" in arguments:
            arguments["timeout_seconds"] = int(arguments["timeout_seconds"])
        created = stepfunctions.create_state_machine(
            name=f"tasks-local-{workflow.name}",
            definition=json.dumps(build(**arguments)),
            roleArn=f"arn:aws:iam::123456789012:role/tasks-local-{workflow.name}",
        )
        machines[workflow.name] = (workflow, str(created["stateMachineArn"]))
    return machines


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def api_function() -> Function:
    return next(f for f in FUNCTIONS if f.routes)


@contextlib.contextmanager
def event_plumbing(services: Services, invoke: Invoke) -> Iterator[tuple[StreamPoller, LocalBus]]:
    """The table's stream feeding the stream function, the bus feeding the consumers and
    workflows, and the scheduled rules firing, each on its own thread, as Lambda's event-source
    mapping and EventBridge would; and the table's TTL (`services.ttl`), whose deletions the
    poller hands over as AWS does."""
    stream_function = next(f for f in FUNCTIONS if f.stream is not None)
    assert stream_function.stream is not None
    ttl = LocalTtl(
        client=_client("dynamodb", services.dynamodb_endpoint),
        table_name=TABLE,
        clock_offset=services.clock_offset,
        interval_s=services.ttl_interval_s,
    )
    poller = StreamPoller(
        client=_client("dynamodbstreams", services.dynamodb_endpoint),
        table_client=_client("dynamodb", services.dynamodb_endpoint),
        table_name=TABLE,
        invoke=lambda event: invoke(stream_function, event),
        trigger=stream_function.stream,
        region=REGION,
        ttl_removals=ttl.removals,
    )
    bus = LocalBus(
        sqs=_client("sqs", services.s3_endpoint),
        stepfunctions=_client("stepfunctions", services.s3_endpoint),
        queue_url=services.tap_queue,
        functions=[f for f in FUNCTIONS if f.rules],
        workflows=services.workflows,
        invoke=invoke,
        inbox=services.relay.inbox if services.relay else queue.Queue(),
    )
    scheduler = LocalScheduler(
        functions=[f for f in FUNCTIONS if f.schedules],
        deliver=bus.deliver_scheduled,
        region=REGION,
        clock_offset=services.clock_offset,
        manual=services.manual_schedules,
    )
    poller.start()
    bus.start()
    services.scheduler = scheduler.start()
    services.ttl = ttl.start()
    try:
        yield poller, bus
    finally:
        services.ttl = None
        ttl.stop()
        services.scheduler = None
        scheduler.stop()
        poller.stop()
        bus.stop()
