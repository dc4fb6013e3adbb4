"""Step Functions: the approval workflow's callback. A state machine waiting on a task token
(`.waitForTaskToken`) resumes when told its task is done (SendTaskSuccess).

botocore errors never leave this module: a send that fails for a reason other than a token
that is no longer valid becomes `taskcore.errors.Unavailable`, and the event is retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from taskcore.adapters import clients
from taskcore.errors import Unavailable


@attrs.define
class StepFunctionsCallback:
    """Tells a state machine waiting on a task token that its task is done."""

    endpoint_url: str | None = None
    region: str | None = None
    _client: clients.LazyClient = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._client = clients.LazyClient("stepfunctions", self.endpoint_url, self.region)

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        """Send the task's result; False if the token is no longer valid (already answered,
        timed out, or its execution ended), which for us means there is nothing left to do."""
        try:
            self._client.get().send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                return False
            raise Unavailable(f"Step Functions is unavailable ({code})") from error
        except BotoCoreError as error:
            raise Unavailable(f"Step Functions is unavailable ({error})") from error
        return True
