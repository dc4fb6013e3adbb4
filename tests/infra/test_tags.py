"""Every taggable resource carries Application, Environment and Component, and the stack's extra
tags. "Taggable" is read from pulumi-aws itself: the resource class's arguments include `tags`."""

from __future__ import annotations

import pytest

from infra import mocks
from infra.mocks import Inventory, Resource
from infra.tags import accepts_tags
from stack.config import StackConfig


def _component(graph: Inventory, resource: Resource) -> str:
    parent = graph.parent_of(resource)
    assert parent is not None, resource.name
    assert not parent.custom, resource.name
    return parent.name


def test_the_taggable_test_reads_the_provider() -> None:
    assert accepts_tags("aws:lambda/function:Function")
    assert accepts_tags("aws:sqs/queue:Queue")
    assert not accepts_tags("aws:lambda/permission:Permission")
    assert not accepts_tags("random:index/randomPassword:RandomPassword")


def test_every_taggable_resource_is_tagged(graph: Inventory) -> None:
    taggable = [r for r in graph.resources if r.custom and accepts_tags(r.type)]
    assert len(taggable) > 50
    untagged = [
        r.name
        for r in taggable
        if (r.inputs.get("tags") or {}).items()
        < {
            "Application": "tasks",
            "Environment": graph.stack,
            "Component": _component(graph, r),
        }.items()
    ]
    assert untagged == []
    assert all(
        r.inputs["tags"]["Component"] == _component(graph, r)
        and r.inputs["tags"]["Environment"] == graph.stack
        and r.inputs["tags"]["Application"] == "tasks"
        for r in taggable
    )
    untaggable = [r for r in graph.resources if r.custom and not accepts_tags(r.type)]
    assert not [r.name for r in untaggable if "tags" in r.inputs]


def test_the_stacks_extra_tags_go_everywhere_the_standard_ones_do() -> None:
    extra = {"CostCenter": "cc-1234", "Owner": "platform-team"}
    graph = mocks.run("dev", overrides={"tasks:tags": extra})
    taggable = [r for r in graph.resources if r.custom and accepts_tags(r.type)]
    assert taggable
    for resource in taggable:
        assert resource.inputs["tags"].items() >= extra.items(), resource.name


@pytest.mark.parametrize("key", ["Application", "Environment", "Component", "aws:createdBy"])
def test_extra_tags_cannot_replace_the_programs_or_awss_own(key: str) -> None:
    with pytest.raises(ValueError, match="set by the program"):
        StackConfig.from_values("dev", {"aws:region": "eu-west-1", "tasks:tags": {key: "x"}})


def test_no_resource_is_made_outside_a_component() -> None:
    """The tag needs a component: the program must not create resources at the top level."""
    graph = mocks.run("dev")
    top_level = [r for r in graph.resources if r.custom and not graph.parent_of(r)]
    assert top_level == []
