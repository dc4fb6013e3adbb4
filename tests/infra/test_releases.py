"""Releases and cold starts: every function publishes a version and has a `live` alias on it;
every trigger invokes `live` and every permission to invoke names it; the HTTP function(s) take
the stack's cold-start mode, the others the manifest's.

Expectations come from `stack/manifest.py`, the sample entries and the stack config, never from
a list kept here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from infra import mocks
from infra.mocks import Inventory
from stack.config import StackConfig
from stack.manifest import Function
from tests.infra import graph as g

# A Lambda function's ARN, with its qualifier (version or alias) if it has one.
FUNCTION_ARN = re.compile(
    r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:([A-Za-z0-9_-]+)(?::([A-Za-z0-9_$-]+))?"
)
SNAPSTART = {"applyOn": "PublishedVersions"}


def test_every_function_publishes_and_has_a_live_alias_on_its_version(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    assert len(graph.of_type(g.ALIAS)) == len(functions)
    for function in functions:
        lam = g.function(graph, function.name)
        assert lam.inputs["publish"] is True
        alias = g.alias(graph, function.name)
        assert alias.inputs["functionVersion"] == lam.outputs["version"] != "$LATEST"
        assert alias.parent == lam.parent


def test_every_invoker_names_the_live_alias(graph: Inventory) -> None:
    """Every function ARN any resource holds (integration URIs, mappings, rule targets, workflow
    definitions, IAM documents) is qualified with `live`, and what names a function by name
    (permissions, async invoke configs) names `live` as its qualifier."""
    text = json.dumps([r.inputs for r in graph.resources], default=str)
    found = FUNCTION_ARN.findall(text)
    assert found
    assert {qualifier for _, qualifier in found} == {g.LIVE}, found
    aliases = graph.of_type(g.ALIAS)
    arns = {a.outputs["arn"] for a in aliases}
    for integration in graph.of_type(g.INTEGRATION):
        assert integration.inputs["integrationUri"] in {a.outputs["invokeArn"] for a in aliases}
    for mapping in graph.of_type(g.MAPPING):
        assert mapping.inputs["functionName"] in arns
    lambda_targets = [t for t in graph.of_type(g.TARGET) if ":lambda:" in t.inputs["arn"]]
    assert lambda_targets
    assert {t.inputs["arn"] for t in lambda_targets} <= arns
    for named in (*graph.of_type(g.PERMISSION), *graph.of_type(g.INVOKE_CONFIG)):
        assert named.inputs["qualifier"] == g.LIVE, named.name


def test_workflow_steps_and_their_roles_name_the_live_alias(graphs: dict[str, Inventory]) -> None:
    """The synthetic graph's sample workflow has a Lambda step (the real manifest's has none)."""
    graph = graphs["synthetic"]
    step = g.alias(graph, "sample-step").outputs["arn"]
    machine = g.by_output(graph, g.STATE_MACHINE, "name", "tasks-dev-sample")
    definition = json.loads(machine.inputs["definition"])
    assert definition["States"]["Step"]["Parameters"]["FunctionName"] == step
    invoked = {
        resource
        for action, resource in g.allowed_pairs(g.role_policy(graph, machine.inputs["roleArn"]))
        if action == "lambda:InvokeFunction"
    }
    assert invoked == {step}


def test_the_http_functions_take_the_stacks_cold_start_the_others_the_manifests(
    graph: Inventory, functions: Sequence[Function], config: StackConfig
) -> None:
    for function in functions:
        expected = config.http_cold_start if function.routes else function.cold_start
        lam = g.function(graph, function.name)
        assert (lam.inputs.get("snapStart") == SNAPSTART) == (expected.mode == "snapstart")
        provisioned = [
            c.inputs
            for c in graph.of_type(g.PROVISIONED)
            if c.inputs["functionName"] == lam.outputs["name"]
        ]
        if expected.mode == "provisioned":
            assert provisioned == [
                {
                    "functionName": lam.outputs["name"],
                    "qualifier": g.LIVE,
                    "provisionedConcurrentExecutions": expected.provisioned,
                }
            ]
        else:
            assert provisioned == []


def test_the_synthetic_graph_has_every_cold_start_mode(graphs: dict[str, Inventory]) -> None:
    graph = graphs["synthetic"]
    assert g.function(graph, "sample-step").inputs["snapStart"] == SNAPSTART
    assert [c.inputs["functionName"] for c in graph.of_type(g.PROVISIONED)] == [
        "tasks-dev-sample-consumer"
    ]


def test_dev_has_neither_snapstart_nor_provisioned_concurrency(
    graphs: dict[str, Inventory],
) -> None:
    dev = graphs["dev"]
    assert not [f.name for f in dev.of_type(g.FUNCTION) if f.inputs.get("snapStart")]
    assert dev.of_type(g.PROVISIONED) == []


def test_prod_snapshots_the_api_function_and_nothing_else(graphs: dict[str, Inventory]) -> None:
    prod = graphs["prod"]
    snapshotted = {f.outputs["name"] for f in prod.of_type(g.FUNCTION) if f.inputs.get("snapStart")}
    assert snapshotted == {"tasks-prod-api"}
    assert g.function(prod, "api").inputs["snapStart"] == SNAPSTART
    assert prod.of_type(g.PROVISIONED) == []


def test_prod_may_provision_instead_on_the_live_alias() -> None:
    graph = mocks.run(
        "prod", overrides={"tasks:coldStart": "provisioned", "tasks:provisionedConcurrency": 5}
    )
    api = g.function(graph, "api")
    assert "snapStart" not in api.inputs
    (config,) = graph.of_type(g.PROVISIONED)
    assert config.inputs == {
        "functionName": "tasks-prod-api",
        "qualifier": g.LIVE,
        "provisionedConcurrentExecutions": 5,
    }
    assert config.parent == api.parent
