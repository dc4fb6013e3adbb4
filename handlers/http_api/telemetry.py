"""The HTTP API's one Logger and one Metrics instance, shared by the app, its error mapping and
the routes that count something (tasks created, exports requested)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics

# Requests that add no metric are normal; Powertools would warn about each one.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)

logger = Logger(service="tasks-api")
metrics = Metrics(namespace="tasks", service="api")
