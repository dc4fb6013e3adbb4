"""SnapStart's runtime hooks, for every function (AWS's `snapshot-restore-py`, which Lambda's
Python managed runtimes include).

With SnapStart, Lambda initialises a function once, when a version is published: the runtime
imports the handler module, runs the before-snapshot hooks and snapshots the microVM. Every new
execution environment is then a restore of that one snapshot: it runs the after-restore hooks,
then its first invocation. Without SnapStart (on-demand functions, the local platform, the
tests) the runtime runs neither hook, and nothing here changes how a function starts.

Every handler module imports this one, which registers both hooks, and declares what each of its
functions uses (`prepare`), since one module may serve several functions.

**Before the snapshot** (`before_snapshot`): the expensive init that needs no request to AWS,
done once instead of in every restored container: the function's adapters through the
composition root (which imports their modules: PynamoDB, botocore's models), the settings, and
the botocore clients those adapters would otherwise build on first use
(`taskcore.adapters.clients.build_declared`). No invocation runs, so no connection is opened and
no id, cursor or timestamp is made before the snapshot.

**After restore** (`after_restore`), what must differ per container, because everything in the
process's memory is the same in every restore of one snapshot:

- `random`: its Mersenne Twister state. Our code does not use it, but botocore's retry backoff
  jitter does (and Powertools' log sampling): restores of one snapshot would draw the same
  "random" delays and retry in step, which jitter exists to prevent. Reseeded from os.urandom.
  (CPython reseeds it after `os.fork()`, but a restored microVM runs no at-fork handler.)
- python-ulid's `default_generator`: ids take their randomness from os.urandom (the kernel's
  CSPRNG, not process memory), but the generator keeps the last id's timestamp and randomness
  to stay monotonic within a millisecond, and would increment that shared state in every restore
  that mints an id in the same millisecond. A fresh generator keeps ids independent of clocks.
- Powertools' cold-start flags (Logger's `cold_start` key, Metrics' ColdStart metric, Tracer's
  annotation): module globals that flip on the first invocation. Powertools recognises
  provisioned concurrency, not SnapStart. No invocation runs before the snapshot, so they are
  True at restore today; setting them again keeps each restore's first invocation a cold start
  if a warm-up invocation is ever added to the init.

Nothing else needs it: the clock is read per call; cursors are an HMAC of their content (no
nonce; the secret is the same in every container, as it must be for any container to read
another's cursors); idempotency keys come from the client, and the record they guard is a
conditional write in DynamoDB, not process state; botocore refreshes credentials itself when they
are near expiry (with SnapStart they come from Lambda's container credentials endpoint, reread on
each refresh), and opens connections on first use, after the restore.

docs/snapstart.md has the sources, the test that simulates two restores
(tests/handlers/test_snapstart.py) and the restore figure `make bench` measures.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Sequence

import ulid
from snapshot_restore_py import register_after_restore, register_before_snapshot

Accessor = Callable[[], object]

PREPARATIONS: dict[str, tuple[Accessor, ...]] = {}
"""Each function's handler, as Lambda names it (`_HANDLER`: `handlers.consumers.record_stats`)
-> the composition root's accessors it uses, called before the snapshot."""

COLD_START_FLAGS = (
    "aws_lambda_powertools.logging.logger",
    "aws_lambda_powertools.metrics.provider.cold_start",
    "aws_lambda_powertools.metrics.base",
    "aws_lambda_powertools.tracing.tracer",
)
"""The Powertools modules whose global `is_cold_start` the first invocation sets to False."""


def prepare(module: str, **functions: Sequence[Accessor]) -> None:
    """Declare, for each function `module` serves (by attribute name), the composition root's
    accessors it uses: `prepare(__name__, record_stats=[bootstrap.stats_store])`."""
    for attribute, accessors in functions.items():
        PREPARATIONS[f"{module}.{attribute}"] = tuple(accessors)


def before_snapshot(handler: str | None = None) -> None:
    """Build what the function (`handler`, default: Lambda's `_HANDLER`) uses, and its clients.

    A function that declared nothing, or whose settings are missing a variable, fails here, in
    the init that makes the snapshot, rather than at its first invocation.
    """
    name = handler or os.environ.get("_HANDLER", "")
    if name not in PREPARATIONS:
        raise RuntimeError(
            f"handler {name!r} declares nothing to build before a SnapStart snapshot: "
            "declare it with handlers.snapstart.prepare(...) in its module"
        )
    for accessor in PREPARATIONS[name]:
        accessor()
    # Imported here: an import of a handler module off SnapStart must not load botocore.
    from taskcore.adapters import clients

    clients.build_declared()


def after_restore() -> None:
    """Make this container's randomness, id state and cold-start flags its own."""
    random.seed()
    ulid.default_generator = ulid.ULIDGenerator()
    for module_name in COLD_START_FLAGS:
        module = sys.modules.get(module_name)
        if module is not None and "is_cold_start" in vars(module):
            vars(module)["is_cold_start"] = True


register_before_snapshot(before_snapshot)
register_after_restore(after_restore)
