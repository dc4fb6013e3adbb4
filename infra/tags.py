"""Tags on every taggable resource, set once for the whole program.

`tag_everything` registers one stack transformation: every resource whose pulumi-aws arguments
include `tags` gets `Application` (the project), `Environment` (the stack), `Component` (the
logical name of the component that made it: `functions`, `api`, ...) and the stack's extra
`tasks:tags`. A resource made outside a component is an error: it would have no `Component`.
Tags a resource sets itself are kept; the three standard ones cannot be overridden (the stack
config refuses them as extra tags).

A transformation rather than the provider's `defaultTags`: the tags are then inputs of each
resource, visible to `make plan`, the mocks' checks against AWS's tag limits and the policy
pack, and `Component` (which differs per resource) is set by the same mechanism.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import weakref
from collections.abc import Mapping

import pulumi

STANDARD = ("Application", "Environment", "Component")


@functools.cache
def accepts_tags(type_: str) -> bool:
    """Whether the Pulumi resource class behind a type token (`aws:lambda/function:Function`)
    takes a `tags` argument: read from the provider's own Python SDK, never listed here."""
    package, module, name = type_.split(":")
    python_package = f"pulumi_{package}"
    section = module.split("/")[0]
    if section != "index":
        python_package += "." + ("lambda_" if section == "lambda" else section)
    resource_class = getattr(importlib.import_module(python_package), name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def standard_tags(application: str, environment: str, component: str) -> dict[str, str]:
    return dict(zip(STANDARD, (application, environment, component), strict=True))


def tag_everything(application: str, environment: str, extra: Mapping[str, str]) -> None:
    """Register the transformation; call once, before the first resource."""
    components: weakref.WeakKeyDictionary[pulumi.Resource, str] = weakref.WeakKeyDictionary()

    def transformation(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        if isinstance(args.resource, pulumi.ComponentResource):
            components[args.resource] = args.name
            return None
        if "tags" not in args.props:
            return None  # the resource takes no tags
        parent = args.opts.parent if args.opts else None
        component = components.get(parent) if parent is not None else None
        if component is None:
            raise ValueError(f"{args.type_} {args.name!r} is not inside a component: no Component")
        ours = standard_tags(application, environment, component)
        tags = pulumi.Output.from_input(args.props.get("tags") or {}).apply(
            lambda own: {**extra, **(own or {}), **ours}
        )
        return pulumi.ResourceTransformationResult({**args.props, "tags": tags}, args.opts)

    pulumi.runtime.register_stack_transformation(transformation)
