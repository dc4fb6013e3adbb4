"""Monitoring: alarms and a dashboard for what the other components built, read from them (and
so from the manifest), never from a list kept here.

Alarms: every function's errors, throttles and p99 duration (against 80% of its timeout); a
scheduled function's missed runs (no invocation over two of its intervals: a rule that stopped
firing raises no error); the API's 5xx (any: a 5xx is always a bug here) and p99 latency (the
stack's threshold); the table's throttled reads and writes; every failure and dead-letter queue
holding a message; every state machine's failed and timed-out executions. They notify one
KMS-encrypted SNS topic, and the stack's `alarmEmail` when set. The dashboard shows the same
metrics, one row per concern.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pulumi
import pulumi_aws as aws

from infra.api import STAGE, Api
from infra.context import Deployment, policy
from infra.data import Data
from infra.events import Subscriptions
from infra.functions import Functions
from infra.state_machines import StateMachines
from stack import schedules
from stack.manifest import Function

PERIOD_S = 300
DURATION_ALARM_SHARE = 0.8  # of the function's timeout


@attrs.frozen
class MonitoringArgs:
    deployment: Deployment
    key_arn: pulumi.Input[str]
    functions: Functions
    subscriptions: Subscriptions
    state_machines: StateMachines
    api: Api
    data: Data


@attrs.frozen(kw_only=True)
class Alarm:
    """One CloudWatch alarm, in the terms that vary between ours."""

    key: str
    description: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    threshold: float
    statistic: str = "Sum"
    evaluation_periods: int = 1
    datapoints: int = 1
    period: int = PERIOD_S
    comparison: str = "GreaterThanThreshold"
    missing_data: str = "notBreaching"


def missed_runs_period(function: Function) -> int | None:
    """Seconds over which a scheduled function must have run at least once: two of its
    longest intervals (over a week of its schedules), a multiple of 60 as CloudWatch requires
    ("Valid values are 10, 20, 30, and any multiple of 60": botocore, PutMetricAlarm Period).
    One lost run is no alarm (the reminder sweep loses nothing to it); two in a row are."""
    if not function.schedules:
        return None
    origin = datetime(2030, 1, 1, tzinfo=UTC)  # any moment: the schedules repeat weekly or less
    gaps = [
        schedules.longest_gap(s.expression, origin=origin, within=timedelta(days=8))
        for s in function.schedules
    ]
    known = [gap for gap in gaps if gap is not None]
    if len(known) < len(gaps):
        raise ValueError(f"{function.name}: a schedule that runs less than weekly")
    return math.ceil(2 * max(known).total_seconds() / 60) * 60


class Monitoring(pulumi.ComponentResource):
    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:monitoring:Monitoring", name, None, opts)
        env = args.deployment
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-alarms",
            name=f"{env.prefix}-alarms",
            kms_master_key_id=args.key_arn,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=policy(
                [
                    {
                        "Sid": "CloudWatchAlarmsOfThisAccount",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": self.topic.arn,
                        "Condition": {"StringEquals": {"aws:SourceAccount": env.account_id}},
                    }
                ]
            ),
            opts=child,
        )
        if env.config.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=env.config.alarm_email,
                opts=child,
            )
        self.alarms = {}
        for alarm in self._alarms(args):
            self._alarm(name, alarm, env)
        self._table_throttles(name, args, env)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=env.prefix,
            dashboard_body=self._dashboard(args),
            opts=child,
        )
        self.register_outputs({"topic": self.topic.arn, "alarms": sorted(self.alarms)})

    def _alarms(self, args: MonitoringArgs) -> list[Alarm]:
        config = args.deployment.config
        alarms: list[Alarm] = []
        for fn_name, function in args.functions.functions.items():
            dims: dict[str, pulumi.Input[str]] = {"FunctionName": function.name}
            timeout_ms = args.functions.manifest[fn_name].timeout_s * 1000
            alarms += [
                Alarm(
                    key=f"{fn_name}-errors",
                    description=f"{fn_name}: an invocation failed",
                    namespace="AWS/Lambda",
                    metric="Errors",
                    dimensions=dims,
                    threshold=0,
                ),
                Alarm(
                    key=f"{fn_name}-throttles",
                    description=f"{fn_name}: invocations were throttled",
                    namespace="AWS/Lambda",
                    metric="Throttles",
                    dimensions=dims,
                    threshold=0,
                ),
                Alarm(
                    key=f"{fn_name}-duration-p99",
                    description=f"{fn_name}: p99 duration near its timeout",
                    namespace="AWS/Lambda",
                    metric="Duration",
                    dimensions=dims,
                    threshold=timeout_ms * DURATION_ALARM_SHARE,
                    statistic="p99",
                    evaluation_periods=3,
                    datapoints=2,
                ),
            ]
            period = missed_runs_period(args.functions.manifest[fn_name])
            if period is not None:
                alarms.append(
                    Alarm(
                        key=f"{fn_name}-missed-runs",
                        description=f"{fn_name}: no scheduled run in {period // 60} minutes",
                        namespace="AWS/Lambda",
                        metric="Invocations",
                        dimensions=dims,
                        threshold=1,
                        period=period,
                        comparison="LessThanThreshold",
                        missing_data="breaching",  # no invocation at all: no datapoint
                    )
                )
        api: dict[str, pulumi.Input[str]] = {"ApiId": args.api.api.id, "Stage": STAGE}
        alarms += [
            Alarm(
                key="api-5xx",
                description="API: a response was a 5xx (always a bug)",
                namespace="AWS/ApiGateway",
                metric="5xx",
                dimensions=api,
                threshold=0,
            ),
            Alarm(
                key="api-latency-p99",
                description=f"API: p99 latency above {config.alarm_p99_latency_ms} ms",
                namespace="AWS/ApiGateway",
                metric="Latency",
                dimensions=api,
                threshold=config.alarm_p99_latency_ms,
                statistic="p99",
                evaluation_periods=3,
                datapoints=2,
            ),
        ]
        for key, queue in self._queues(args).items():
            alarms.append(
                Alarm(
                    key=f"{key}-messages",
                    description=f"{key}: events are waiting for a look and a redrive",
                    namespace="AWS/SQS",
                    metric="ApproximateNumberOfMessagesVisible",
                    dimensions={"QueueName": queue.name},
                    threshold=0,
                    statistic="Maximum",
                )
            )
        for wf_name, machine in args.state_machines.state_machines.items():
            for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
                alarms.append(
                    Alarm(
                        key=f"{wf_name}-{metric}",
                        description=f"{wf_name}: {metric}",
                        namespace="AWS/States",
                        metric=metric,
                        dimensions={"StateMachineArn": machine.arn},
                        threshold=0,
                    )
                )
        return alarms

    @staticmethod
    def _queues(args: MonitoringArgs) -> dict[str, aws.sqs.Queue]:
        return {
            **{f"{n}-failures": q for n, q in args.functions.failure_queues.items()},
            **{f"{n}-dlq": q for n, q in args.subscriptions.dead_letter_queues.items()},
            **{f"{n}-start-dlq": q for n, q in args.state_machines.dead_letter_queues.items()},
        }

    def _alarm(self, name: str, alarm: Alarm, env: Deployment) -> None:
        percentile = alarm.statistic.startswith("p")
        self.alarms[alarm.key] = aws.cloudwatch.MetricAlarm(
            f"{name}-{alarm.key}",
            name=f"{env.prefix}-{alarm.key}",
            alarm_description=alarm.description,
            namespace=alarm.namespace,
            metric_name=alarm.metric,
            dimensions=dict(alarm.dimensions),
            statistic=None if percentile else alarm.statistic,
            extended_statistic=alarm.statistic if percentile else None,
            period=alarm.period,
            evaluation_periods=alarm.evaluation_periods,
            datapoints_to_alarm=alarm.datapoints,
            threshold=alarm.threshold,
            comparison_operator=alarm.comparison,
            treat_missing_data=alarm.missing_data,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _table_throttles(self, name: str, args: MonitoringArgs, env: Deployment) -> None:
        def metric(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/DynamoDB",
                    metric_name=metric_name,
                    dimensions={"TableName": args.data.name},
                    stat="Sum",
                    period=PERIOD_S,
                ),
            )

        self.alarms["table-throttles"] = aws.cloudwatch.MetricAlarm(
            f"{name}-table-throttles",
            name=f"{env.prefix}-table-throttles",
            alarm_description="table: reads or writes were throttled",
            metric_queries=[
                metric("reads", "ReadThrottleEvents"),
                metric("writes", "WriteThrottleEvents"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="throttled",
                    expression="reads + writes",
                    label="Throttled requests",
                    return_data=True,
                ),
            ],
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _dashboard(self, args: MonitoringArgs) -> pulumi.Output[str]:
        functions = {n: f.name for n, f in args.functions.functions.items()}
        queues = {k: q.name for k, q in self._queues(args).items()}
        machines = {n: m.arn for n, m in args.state_machines.state_machines.items()}

        values: dict[str, Any] = {}

        def widget(title: str, metrics: Sequence[Sequence[Any]], stat: str = "Sum") -> Any:
            return {
                "type": "metric",
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": values["region"],
                    "period": PERIOD_S,
                    "stat": stat,
                    "view": "timeSeries",
                    "metrics": [list(m) for m in metrics],
                },
            }

        def body(resolved: dict[str, Any]) -> str:
            values.update(resolved)
            api, table = values["api"], values["table"]
            widgets = [
                widget(
                    "API requests and errors",
                    [
                        ["AWS/ApiGateway", m, "ApiId", api, "Stage", STAGE]
                        for m in ("Count", "4xx", "5xx")
                    ],
                ),
                widget(
                    "API latency (p50, p99)",
                    [
                        ["AWS/ApiGateway", "Latency", "ApiId", api, "Stage", STAGE, {"stat": s}]
                        for s in ("p50", "p99")
                    ],
                    stat="p99",
                ),
                widget(
                    "Table: consumed capacity and throttles",
                    [
                        ["AWS/DynamoDB", m, "TableName", table]
                        for m in (
                            "ConsumedReadCapacityUnits",
                            "ConsumedWriteCapacityUnits",
                            "ReadThrottleEvents",
                            "WriteThrottleEvents",
                        )
                    ],
                ),
            ]
            for fn_name, fn in sorted(values["functions"].items()):
                widgets.append(
                    widget(
                        f"{fn_name}: invocations, errors, throttles",
                        [
                            ["AWS/Lambda", m, "FunctionName", fn]
                            for m in ("Invocations", "Errors", "Throttles")
                        ],
                    )
                )
                widgets.append(
                    widget(
                        f"{fn_name}: duration (p50, p99)",
                        [
                            ["AWS/Lambda", "Duration", "FunctionName", fn, {"stat": s}]
                            for s in ("p50", "p99")
                        ],
                        stat="p99",
                    )
                )
            if values["queues"]:
                widgets.append(
                    widget(
                        "Failure and dead-letter queues: messages waiting",
                        [
                            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]
                            for _, q in sorted(values["queues"].items())
                        ],
                        stat="Maximum",
                    )
                )
            for wf_name, arn in sorted(values["machines"].items()):
                widgets.append(
                    widget(
                        f"{wf_name}: executions",
                        [
                            ["AWS/States", m, "StateMachineArn", arn]
                            for m in (
                                "ExecutionsStarted",
                                "ExecutionsSucceeded",
                                "ExecutionsFailed",
                                "ExecutionsTimedOut",
                            )
                        ],
                    )
                )
            return json.dumps({"widgets": widgets}, separators=(",", ":"))

        return pulumi.Output.all(
            region=args.deployment.region,
            api=args.api.api.id,
            table=args.data.name,
            functions=functions,
            queues=queues,
            machines=machines,
        ).apply(body)
