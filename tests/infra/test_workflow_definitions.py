"""The state machines' Amazon States Language, as the program deploys it: valid by the spec
(asl-validator, run from node_modules as `make test` installs it), and the approval workflow's
shape: validate, check priority, auto-approve or ask, record, complete."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.mocks import Inventory
from stack.workflows import REQUIRED, approval_definition
from tests.infra import graph as g

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def validate(definition: dict[str, Any], where: Path) -> subprocess.CompletedProcess[str]:
    path = where / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_deployed_state_machine_is_valid_asl(
    graph: Inventory, graph_name: str, tmp_path: Path
) -> None:
    machines = graph.of_type(g.STATE_MACHINE)
    assert machines
    for machine in machines:
        result = validate(json.loads(machine.inputs["definition"]), tmp_path)
        assert result.returncode == 0, (graph_name, machine.name, result.stdout, result.stderr)


def test_the_validator_refuses_what_the_spec_refuses(tmp_path: Path) -> None:
    definition = approval_definition(bus_name="bus", timeout_seconds=60)
    definition["States"]["AutoApproved"]["Next"] = "Recorded"  # no such state
    result = validate(definition, tmp_path)
    assert result.returncode != 0
    assert "Recorded" in result.stdout + result.stderr


def _paths(node: Any) -> set[str]:
    """Every input path a state reads (`Variable`s and `.$` parameters), but the context's."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if (key == "Variable" or key.endswith(".$")) and isinstance(value, str):
                found.add(value)
            found |= _paths(value)
    elif isinstance(node, list):
        for item in node:
            found |= _paths(item)
    return {p for p in found if p.startswith("$.")}


def test_validate_checks_every_event_field_a_later_state_reads() -> None:
    """A Choice or a Pass reading a path the input lacks fails the execution with a bare
    States.Runtime: every `$.detail` path is checked by Validate first."""
    states = approval_definition(bus_name="bus", timeout_seconds=60)["States"]
    read = {p for name, s in states.items() if name != "Validate" for p in _paths(s)}
    from_event = {p for p in read if p.startswith("$.detail")}
    assert from_event == set(REQUIRED)
    checked = {c["Variable"] for c in states["Validate"]["Choices"][0]["And"]}
    assert checked == set(REQUIRED)
    assert all("IsPresent" in c for c in states["Validate"]["Choices"][0]["And"])
    # The rest is what the workflow wrote itself.
    assert set(read - from_event) <= {
        "$.decision.approval",
        "$.decision.decidedBy",
        "$.decision.decidedAt",
    }


def test_the_workflow_has_the_seeds_shape() -> None:
    definition = approval_definition(bus_name="bus", timeout_seconds=60)
    states = definition["States"]
    assert definition["StartAt"] == "Validate"
    edges = {
        name: sorted(
            {c["Next"] for c in state.get("Choices", [])}
            | {state[k] for k in ("Next", "Default") if k in state}
            | {c["Next"] for c in state.get("Catch", [])}
        )
        for name, state in states.items()
    }
    assert edges == {
        "Validate": ["CheckPriority", "InvalidEvent"],
        "InvalidEvent": [],
        "CheckPriority": ["AskApprovers", "AutoApproved", "NoApprovalNeeded"],
        "NoApprovalNeeded": [],
        "AutoApproved": ["RecordDecision"],
        "AskApprovers": ["AnnounceTimeout", "RecordDecision"],
        "RecordDecision": ["Complete"],
        "Complete": [],
        "AnnounceTimeout": ["TimedOut"],
        "TimedOut": [],
    }
    assert {n: s["Type"] for n, s in states.items() if s["Type"] in ("Fail", "Succeed")} == {
        "InvalidEvent": "Fail",
        "NoApprovalNeeded": "Succeed",
        "Complete": "Succeed",
        "TimedOut": "Succeed",
    }
    assert states["InvalidEvent"]["Error"] == "Approval.InvalidEvent"
    auto = states["CheckPriority"]["Choices"][0]["And"]
    assert {"Variable": "$.detail.task.approvalDecidedBy", "StringMatches": "auto:*"} in auto


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_timeout_under_a_second_is_refused(timeout: int) -> None:
    with pytest.raises(ValueError, match="at least one second"):
        approval_definition(bus_name="bus", timeout_seconds=timeout)
