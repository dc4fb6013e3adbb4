"""The captured resource graphs: the real `__main__.py` under Pulumi's mocks, once per stack
per test session (each run takes about a second).

- `dev`, `prod`: the program as it is, with `Pulumi.<stack>.yaml`.
- `synthetic`: the dev stack with the test-only manifest entries of `sample_manifest` added
  (a second HTTP function, a second stream consumer, a multi-rule consumer, a workflow step
  and a workflow with a Lambda step), so every component code path is exercised whatever the
  real manifest holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from infra import mocks
from infra.mocks import Inventory
from stack import manifest
from stack.config import StackConfig
from stack.manifest import Function, Workflow
from tests.infra.graph import STACKS
from tests.infra.sample_manifest import SAMPLE_FUNCTIONS, SAMPLE_WORKFLOW

GRAPHS = (*STACKS, "synthetic")


@pytest.fixture(scope="session")
def graphs() -> dict[str, Inventory]:
    captured = {stack: mocks.run(stack) for stack in STACKS}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest, "FUNCTIONS", (*manifest.FUNCTIONS, *SAMPLE_FUNCTIONS))
        patch.setattr(manifest, "WORKFLOWS", (*manifest.WORKFLOWS, SAMPLE_WORKFLOW))
        captured["synthetic"] = mocks.run("dev")
    return captured


def manifest_of(graph_name: str) -> tuple[Sequence[Function], Sequence[Workflow]]:
    """The manifest entries the graph was built from."""
    if graph_name == "synthetic":
        return (
            (*manifest.FUNCTIONS, *SAMPLE_FUNCTIONS),
            (*manifest.WORKFLOWS, SAMPLE_WORKFLOW),
        )
    return manifest.FUNCTIONS, manifest.WORKFLOWS


def config_of(graph_name: str) -> StackConfig:
    return StackConfig.from_stack_file("dev" if graph_name == "synthetic" else graph_name)


@pytest.fixture(params=GRAPHS)
def graph_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def graph(graphs: dict[str, Inventory], graph_name: str) -> Inventory:
    return graphs[graph_name]


@pytest.fixture
def functions(graph_name: str) -> Sequence[Function]:
    return manifest_of(graph_name)[0]


@pytest.fixture
def workflows(graph_name: str) -> Sequence[Workflow]:
    return manifest_of(graph_name)[1]


@pytest.fixture
def config(graph_name: str) -> StackConfig:
    return config_of(graph_name)
