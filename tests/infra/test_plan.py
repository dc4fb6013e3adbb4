"""`make plan STACK=<stack>`: the inventory an operator reviews, from a mocked run."""

from __future__ import annotations

import subprocess

from infra import plan
from infra.mocks import Inventory
from stack.config import ROOT
from stack.manifest import FUNCTIONS, WORKFLOWS


def test_make_plan_lists_the_table_the_api_and_every_function() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "plan", "STACK=dev"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    out = result.stdout
    assert out.startswith("stack dev: ")
    lines = out.splitlines()
    assert any(
        "aws:dynamodb:Table" in line and "stream=NEW_AND_OLD_IMAGES" in line for line in lines
    )
    assert any("aws:apigatewayv2:Api" in line for line in lines)
    assert any(
        "aws:apigatewayv2:Stage" in line and "throttle=20/s burst=40" in line for line in lines
    )
    for function in FUNCTIONS:
        assert any(
            "aws:lambda:Function" in line and f" tasks-dev-{function.name} " in line
            for line in lines
        ), function.name
    for workflow in WORKFLOWS:
        assert any(
            "aws:sfn:StateMachine" in line and f"tasks-dev-{workflow.name} " in line
            for line in lines
        )
    assert "apiUrl = " in out


def test_the_plan_flags_what_prod_protects(graphs: dict[str, Inventory]) -> None:
    lines = plan.render(graphs["prod"]).splitlines()
    protected = [line.split()[1] for line in lines if "[protected, retained]" in line]
    assert sorted(protected) == ["data-tasks", "identity-users", "keys-cmk", "storage-attachments"]
    assert "[protected" not in plan.render(graphs["dev"])


def test_the_plan_shows_names_and_tags(graphs: dict[str, Inventory]) -> None:
    """What AWS will call each resource (`*` where pulumi-aws generates it) and each
    component's tags."""
    text = plan.render(graphs["prod"])
    assert "-> tasks-prod-task-events-to-stats " in text  # an EventBridge rule, named by us
    assert "-> tasks-prod-task-events-to-stats-dlq " in text
    assert "-> stats " in text  # its target id
    assert "storage-attachments -> storage-attachments-" in text
    for component in ("api", "data", "functions", "subscriptions", "monitoring"):
        assert f"Application=tasks Component={component} Environment=prod" in text


def test_the_plan_shows_versions_aliases_and_cold_starts(graphs: dict[str, Inventory]) -> None:
    prod, dev = plan.render(graphs["prod"]), plan.render(graphs["dev"])
    for function in FUNCTIONS:
        name = function.name
        assert f"functions-{name}-live -> live  version=1 of tasks-prod-{name}" in prod
    lines = prod.splitlines()
    (api,) = [
        line for line in lines if "aws:lambda:Function" in line and " tasks-prod-api " in line
    ]
    assert "publish=on cold-start=snapstart" in api
    assert "cold-start=snapstart" not in dev
    assert "qualifier=live principal=apigateway.amazonaws.com" in prod
    synthetic = plan.render(graphs["synthetic"])
    assert "cold-start=provisioned=2" in synthetic
    assert (
        "functions-sample-consumer-provisioned  2 environments on tasks-dev-sample-consumer:live"
        in synthetic
    )
