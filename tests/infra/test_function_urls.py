"""Function URLs and the web function behind one (issue #16), in both stacks: the URLs the stack
config turns on and no others, each on `live` with auth type NONE, the manifest's invoke mode
and the stack's CORS, the two permissions that let anyone call it (and nothing else), the
download as a web app behind the Lambda Web Adapter, and every function behind a URL verifying
tokens against the issuer and audience API Gateway's authorizer trusts.

Expectations come from `stack/manifest.py` and `StackConfig`, and the few constants are written
out here from their sources (the adapter's README), not imported from infra."""

from __future__ import annotations

import json
from collections.abc import Sequence

import attrs
import pytest
from pulumi_policy import EnforcementLevel

from infra import mocks
from infra.mocks import Inventory, Resource
from policy.offline import check
from stack import manifest
from stack.cold_start import ColdStart
from stack.config import ROOT, StackConfig
from stack.manifest import Function
from tests.infra import graph as g

# awslabs/aws-lambda-web-adapter README.md at 2194417c51b117167092aceed58807bdc0f569a3.
ADAPTER_LAYER = "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64:26"
TOKEN_HEADERS = {"authorization", "content-type"}


def _urls(graph: Inventory) -> dict[str, Resource]:
    """Each Function URL by its function's manifest name."""
    prefix = f"tasks-{graph.stack}-"
    return {u.inputs["functionName"].removeprefix(prefix): u for u in graph.of_type(g.FUNCTION_URL)}


def _public(graph: Inventory) -> list[Resource]:
    return [p for p in graph.of_type(g.PERMISSION) if p.inputs["principal"] == "*"]


def test_the_stack_config_chooses_the_urls(
    graph: Inventory, graph_name: str, config: StackConfig
) -> None:
    urls = _urls(graph)
    assert set(urls) == set(config.function_urls)
    assert graph.outputs["functionUrls"] == {
        name: url.outputs["functionUrl"] for name, url in urls.items()
    }
    expected = {"dev": {"api", "download"}, "prod": {"download"}, "synthetic": {"api", "download"}}
    assert set(urls) == expected[graph_name]


def test_each_url_is_on_live_with_auth_none_the_manifests_mode_and_the_stacks_cors(
    graph: Inventory, functions: Sequence[Function], config: StackConfig
) -> None:
    declared = {f.name: f for f in functions}
    for name, url in _urls(graph).items():
        function = declared[name]
        assert function.url is not None
        i = url.inputs
        assert (i["qualifier"], i["authorizationType"]) == (g.LIVE, "NONE")
        assert i["invokeMode"] == function.url.invoke_mode
        cors = i["cors"]
        assert cors["allowOrigins"] == list(config.cors_allow_origins)
        assert "*" not in cors["allowOrigins"]
        methods = {r.method for r in (*function.routes, *function.url.routes)}
        assert cors["allowMethods"] == sorted(methods)
        assert set(cors["allowHeaders"]) >= TOKEN_HEADERS
        assert 0 < cors["maxAge"] <= 86400
        assert cors["allowCredentials"] is False
    assert _urls(graph)["download"].inputs["invokeMode"] == "RESPONSE_STREAM"
    assert _urls(graph)["download"].inputs["cors"]["allowMethods"] == ["GET"]
    if "api" in _urls(graph):
        assert _urls(graph)["api"].inputs["invokeMode"] == "BUFFERED"


def test_anyone_may_call_a_url_and_invoke_through_it_and_in_no_other_way(
    graph: Inventory,
) -> None:
    """Two statements per URL, as AWS requires since October 2025, both on `live`: the URL for
    everyone (its auth type NONE), and `lambda:InvokeFunction` for everyone only through a
    function URL. No other permission names everyone; the URL waits for both."""
    urls = _urls(graph)
    public = _public(graph)
    assert len(public) == 2 * len(urls)
    for name, url in urls.items():
        function = f"tasks-{graph.stack}-{name}"
        mine = {p.inputs["action"]: p for p in public if p.inputs["function"] == function}
        assert set(mine) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
        through_url = mine["lambda:InvokeFunctionUrl"].inputs
        assert (through_url["qualifier"], through_url["functionUrlAuthType"]) == (g.LIVE, "NONE")
        assert "invokedViaFunctionUrl" not in through_url
        invoke = mine["lambda:InvokeFunction"].inputs
        assert (invoke["qualifier"], invoke["invokedViaFunctionUrl"]) == (g.LIVE, True)
        assert "functionUrlAuthType" not in invoke
        for permission in mine.values():
            assert "sourceArn" not in permission.inputs
            assert permission.urn in url.dependencies


def test_writes_to_one_functions_policy_come_one_at_a_time(graph: Inventory) -> None:
    """pulumi-aws adds statements of its own when it creates a NONE URL: the URL waits for
    every other grant on its function (ours, API Gateway's), and our two wait for each other.
    It does not wait for the rest of the API (the backup path must deploy when the API does
    not)."""
    for name, url in _urls(graph).items():
        function = f"tasks-{graph.stack}-{name}"
        grants = {
            p.inputs["action"] + ("-" + p.inputs["principal"]): p
            for p in graph.of_type(g.PERMISSION)
            if p.inputs["function"] == function
        }
        for grant in grants.values():
            assert grant.urn in url.dependencies, grant.name
        via_url = grants["lambda:InvokeFunction-*"]
        assert grants["lambda:InvokeFunctionUrl-*"].urn in via_url.dependencies
        stage = g.one(graph, g.STAGE)
        assert stage.urn not in url.dependencies


def test_the_download_is_a_web_app_behind_the_web_adapter(
    graph: Inventory, config: StackConfig
) -> None:
    download = manifest.function("download")
    assert download.web is not None
    lam = g.function(graph, "download").inputs
    layer = g.one(graph, "aws:lambda/layerVersion:LayerVersion").outputs["arn"]
    assert lam["handler"] == "handlers/download.sh" == download.web.script
    assert lam["layers"] == [layer, ADAPTER_LAYER]
    variables = lam["environment"]["variables"]
    assert {k: v for k, v in variables.items() if k.startswith("AWS_")} == {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_PORT": "8080",
        "AWS_LWA_READINESS_CHECK_PATH": "/health",
        "AWS_LWA_INVOKE_MODE": "response_stream",
    }
    if "download" in _urls(graph):  # the adapter's mode matches the URL's
        invoke_mode = _urls(graph)["download"].inputs["invokeMode"]
        assert variables["AWS_LWA_INVOKE_MODE"] == invoke_mode.lower()
    assert lam["reservedConcurrentExecutions"] == config.download_concurrency
    assert "snapStart" not in lam  # not even in prod, where the API's is on


def test_the_download_script_is_what_the_adapter_runs() -> None:
    """The handler the adapter execs binds the adapter's port and serves the readiness path."""
    download = manifest.function("download")
    assert download.web is not None
    script = (ROOT / download.web.script).read_text()
    assert script.startswith("#!/bin/sh")
    assert '"${AWS_LWA_PORT:-8080}"' in script
    assert download.web.app in script
    assert download.web.readiness_path == "/health"


def test_functions_behind_a_url_verify_the_authorizers_issuer_and_audience(
    graph: Inventory,
) -> None:
    authorizer = g.one(graph, g.AUTHORIZER).inputs["jwtConfiguration"]
    for function in manifest.FUNCTIONS:
        if function.url is None:
            continue
        variables = g.function(graph, function.name).inputs["environment"]["variables"]
        assert variables["JWT_ISSUER"] == authorizer["issuer"] == graph.outputs["jwtIssuer"]
        assert [variables["JWT_AUDIENCE"]] == authorizer["audiences"]
        assert "JWKS_URI" not in variables  # Cognito's place, under the issuer


def test_an_external_issuer_reaches_the_functions_too() -> None:
    graph = mocks.run(
        "dev",
        overrides={
            "tasks:jwtIssuer": "https://login.example.com/",
            "tasks:jwtAudience": "tasks-api",
        },
    )
    for name in ("api", "download"):
        variables = g.function(graph, name).inputs["environment"]["variables"]
        assert (variables["JWT_ISSUER"], variables["JWT_AUDIENCE"]) == (
            "https://login.example.com/",
            "tasks-api",
        )


# -- config variants (as `pulumi config set` would make them) ----------------------------------


def test_an_operator_can_turn_the_apis_backup_url_on_in_prod() -> None:
    """The emergency path: one config change; the pack still passes."""
    graph = mocks.run("prod", overrides={"tasks:functionUrls": ["download", "api"]})
    urls = _urls(graph)
    assert set(urls) == {"api", "download"}
    assert urls["api"].inputs["cors"]["allowOrigins"] == ["https://tasks.example.com"]
    assert len(_public(graph)) == 4
    mandatory = [str(v) for v in check(graph) if v.level == EnforcementLevel.MANDATORY]
    assert mandatory == []


def test_no_url_no_public_permission() -> None:
    graph = mocks.run("dev", overrides={"tasks:functionUrls": []})
    assert not graph.of_type(g.FUNCTION_URL)
    assert not _public(graph)
    assert graph.outputs["functionUrls"] == {}
    assert g.function(graph, "download").inputs["handler"] == "handlers/download.sh"


def test_an_unbounded_download_is_allowed_outside_prod_only() -> None:
    graph = mocks.run("dev", overrides={"tasks:downloadConcurrency": -1})
    assert "reservedConcurrentExecutions" not in g.function(graph, "download").inputs
    with pytest.raises(ValueError, match="tasks:downloadConcurrency is -1"):
        mocks.run("prod", overrides={"tasks:downloadConcurrency": -1})


def _with(monkeypatch: pytest.MonkeyPatch, changed: Function) -> None:
    """The manifest with `changed` in place of the function of its name."""
    original = manifest.function(changed.name)
    monkeypatch.setattr(
        manifest, "FUNCTIONS", tuple(changed if f is original else f for f in manifest.FUNCTIONS)
    )


def test_a_streamed_url_needs_the_web_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    streamed = manifest.FunctionUrl(invoke_mode="RESPONSE_STREAM")
    _with(monkeypatch, attrs.evolve(manifest.function("api"), url=streamed))
    with pytest.raises(ValueError, match="api: a RESPONSE_STREAM Function URL needs"):
        mocks.run("dev")


def test_a_web_function_never_runs_with_snapstart(monkeypatch: pytest.MonkeyPatch) -> None:
    _with(
        monkeypatch, attrs.evolve(manifest.function("download"), cold_start=ColdStart("snapstart"))
    )
    refusal = r"download: a web function .* does not run with SnapStart"
    with pytest.raises(ValueError, match=refusal):
        mocks.run("dev")


def test_the_adapters_settings_are_not_the_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    download = manifest.function("download")
    environment = {**download.environment, "AWS_LWA_PORT": "table.name"}
    _with(monkeypatch, attrs.evolve(download, environment=environment))
    with pytest.raises(ValueError, match=r"\['AWS_LWA_PORT'\] are the Web Adapter's settings"):
        mocks.run("dev")


def test_the_plan_shows_each_url(graphs: dict[str, Inventory]) -> None:
    from infra import plan

    text = plan.render(graphs["dev"])
    lines = [line for line in text.splitlines() if "aws:lambda:FunctionUrl" in line]
    assert len(lines) == 2
    assert any("tasks-dev-download:live auth=NONE mode=RESPONSE_STREAM" in line for line in lines)
    assert any("tasks-dev-api:live auth=NONE mode=BUFFERED" in line for line in lines)
    public = [line for line in text.splitlines() if "principal=*" in line]
    assert len(public) == 4
    outputs = json.loads(text.split("functionUrls = ", 1)[1].splitlines()[0])
    assert set(outputs) == {"api", "download"}
