"""The one place the adapters build AWS clients (DynamoDB's come from PynamoDB's connection,
configured the same way in `taskcore.adapters.dynamodb.table.bind_models`).

botocore, not boto3: boto3's import adds ~50 ms to every cold start, and S3 clients get
`generate_presigned_post` from botocore itself. Every client retries in botocore's standard mode
and has bounded timeouts. A local endpoint (DynamoDB Local, moto, MinIO) gets dummy credentials,
a default region and, for S3, path-style addressing: real credentials are never sent to an
emulator. Without an endpoint a client uses the default credential chain (the function's role).

Clients are built on first use (`LazyClient`, PynamoDB's connections), and each says so here
(`declare`), so that `build_declared` can build them all ahead of use: before a SnapStart
snapshot.

Every client of a process comes from one botocore session (`session()`), and PynamoDB's
session shares its data loader (`share_loader`): a client built in a session of its own loads
botocore's endpoint and partition data again, ~65 ms where the shared session's next client
takes ~5 ms (and ~12 ms with a shared loader only), measured by `make bench`'s first-request
figure.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Literal

import attrs
import botocore.session
from botocore.config import Config

Service = Literal["s3", "events", "stepfunctions", "secretsmanager", "sns"]

LOCAL_REGION = "us-east-1"
"""The region a client of an emulator signs for when none is given: an emulator ignores it,
botocore needs one."""

LOCAL_CREDENTIAL = "local"


def build_client(
    service: Service,
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    retries: int = 3,
    timeout_s: float | None = None,
) -> Any:
    """A botocore client for `service` at `endpoint_url` (None: AWS itself).

    `retries` is the number of retries after the first attempt; `timeout_s` bounds connecting
    and each read (default: 5 s to connect, 10 s to read).
    """
    local = endpoint_url is not None
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "total_max_attempts": retries + 1},
        "connect_timeout": timeout_s or 5,
        "read_timeout": timeout_s or 10,
    }
    if service == "s3":
        # SigV4 everywhere, presigned URLs and POSTs included.
        options["signature_version"] = "s3v4"
        if local:
            options["s3"] = {"addressing_style": "path"}
    dummy = LOCAL_CREDENTIAL if local else None  # None: the default credential chain
    shared = session()
    with _session_lock:  # a session is not thread-safe; the clients it builds are
        return shared.create_client(
            service,
            endpoint_url=endpoint_url,
            region_name=region or (LOCAL_REGION if local else None),
            config=Config(**options),
            aws_access_key_id=dummy,
            aws_secret_access_key=dummy,
        )


_session_lock = threading.Lock()


@functools.cache
def session() -> botocore.session.Session:
    """This process's botocore session, built on first use: every client `build_client` builds
    comes from it, and with it one credential chain (the function's role, resolved once)."""
    return botocore.session.get_session()


def share_loader(other: botocore.session.Session) -> None:
    """Give a session built elsewhere (PynamoDB builds its own) this process's data loader, so
    its clients do not load botocore's service, endpoint and partition data a second time."""
    other.register_component("data_loader", session().get_component("data_loader"))


_lazy_clients: weakref.WeakValueDictionary[int, LazyClient] = weakref.WeakValueDictionary()
"""Every unbuilt `LazyClient`, by id (attrs makes them unhashable); each leaves with its adapter."""
_builders: list[Callable[[], object]] = []


def declare(build: Callable[[], object]) -> None:
    """Remember how to build a client an adapter will build on first use, for `build_declared`
    (PynamoDB's connections, which build their botocore client lazily; a `LazyClient` declares
    itself). The builder is kept for the process's life: declare bindings that live as long."""
    _builders.append(build)


def build_declared() -> None:
    """Build now every client the adapters made so far will build on first use: before a
    SnapStart snapshot (`handlers.snapstart`), so no restored container pays for one.

    Building a client sends no request to the service. It resolves credentials, though: with
    keys in the environment that is a read of `os.environ`; with container credentials (what
    Lambda gives a SnapStart function) botocore fetches them from the local credentials
    endpoint, and refreshes them itself when they are near expiry, after a restore included.
    """
    for lazy in list(_lazy_clients.values()):
        lazy.get()
    for build in list(_builders):
        build()


@attrs.define
class LazyClient:
    """A client built on first use, once, however many threads ask: most invocations of a
    function never touch some of its clients, and each costs tens of milliseconds of cold
    start (measured by `make bench`)."""

    service: Service
    endpoint_url: str | None = None
    region: str | None = None
    retries: int = 3
    timeout_s: float | None = None
    _client: Any = attrs.field(default=None, alias="client")
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self._client is None:
            _lazy_clients[id(self)] = self

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = build_client(
                        self.service,
                        self.endpoint_url,
                        self.region,
                        retries=self.retries,
                        timeout_s=self.timeout_s,
                    )
        return self._client
