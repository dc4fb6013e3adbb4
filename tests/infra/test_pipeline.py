"""The GitHub Actions pipeline (`.github/workflows/deploy.yml`): actionlint finds nothing, and the
properties the deploy path relies on hold.

The workflow cannot run here (no GitHub, no AWS), so this checks what would otherwise only show
on GitHub: AWS credentials come from OIDC only, in a GitHub environment; every `pulumi preview`
and `pulumi up` runs the policy pack in the locked `.venv`; prod is deployed only after dev,
from a push to main; deploys of one stack never overlap; every job has a timeout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.config import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "deploy.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
STACKS = ("dev", "prod")
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"
PULUMI_ACTION = "pulumi/actions@"
# A `pulumi preview` / `pulumi up` in command position (not, say, inside an `echo "..."`).
PULUMI_COMMAND = re.compile(r"(?:^|[;&|(])\s*(pulumi\s+(?:preview|up)\b[^\n]*)", re.MULTILINE)
STACK_OPTION = re.compile(r'--stack[ =]"?([\w$]+)')

Job = dict[str, Any]


def _workflow_files() -> list[Path]:
    return sorted(p for p in WORKFLOWS.iterdir() if p.suffix in {".yml", ".yaml"})


def _load() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict), triggers
    return triggers


def _jobs() -> dict[str, Job]:
    jobs = _load()["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _steps(job: Job) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def _script(job: Job) -> str:
    """Every `run:` of the job, with backslash-continued lines joined into one."""
    text = "\n".join(str(step["run"]) for step in _steps(job) if "run" in step)
    return re.sub(r"\\\n\s*", " ", text)


def _uses(job: Job, action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if str(s.get("uses", "")).startswith(action)]


def _needs(job: Job) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def _environment(job: Job) -> str | None:
    environment = job.get("environment")
    if isinstance(environment, dict):
        return str(environment["name"])
    return None if environment is None else str(environment)


def _condition(job: Job) -> str:
    return re.sub(r"\s+", " ", str(job.get("if", ""))).replace('"', "'")


def _pulumi_commands(job: Job) -> list[str]:
    return [m.group(1) for m in PULUMI_COMMAND.finditer(_script(job))]


def _deploy_jobs() -> dict[str, tuple[str, Job]]:
    """stack -> (job id, job) of the job that runs `pulumi up` on that stack."""
    found: dict[str, tuple[str, Job]] = {}
    for name, job in _jobs().items():
        for command in _pulumi_commands(job):
            if command.split()[1] == "up":
                match = STACK_OPTION.search(command)
                assert match, f"{name}: `{command}` names no stack"
                assert match.group(1) not in found, f"two jobs deploy {match.group(1)}"
                found[match.group(1)] = (name, job)
    assert set(found) == set(STACKS), found
    return found


def _job_running(fragment: str) -> tuple[str, Job]:
    matching = [(n, j) for n, j in _jobs().items() if fragment in _script(j)]
    assert len(matching) == 1, f"jobs running {fragment!r}: {[n for n, _ in matching]}"
    return matching[0]


@pytest.mark.parametrize("path", _workflow_files(), ids=lambda p: p.name)
def test_actionlint_reports_nothing(path: Path) -> None:
    assert ACTIONLINT.is_file(), f"{ACTIONLINT} missing: run `make deps`"
    result = subprocess.run(
        [str(ACTIONLINT), str(path.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_it_runs_on_pull_requests_and_pushes_to_main() -> None:
    triggers = _triggers(_load())
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_no_static_aws_credentials() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets.aws_" not in text.lower()
    for name, job in _jobs().items():
        for step in _steps(job):
            inputs = set(step.get("with", {}))
            assert not inputs & {"aws-access-key-id", "aws-secret-access-key"}, (name, step)
        for scope in (job, *_steps(job)):
            env = set(scope.get("env", {}))
            assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, name


def test_aws_credentials_come_from_oidc_in_an_environment() -> None:
    workflow_permissions = _load().get("permissions", {})
    assert workflow_permissions == {"contents": "read"}
    aws_jobs = {n: j for n, j in _jobs().items() if _uses(j, AWS_CREDENTIALS)}
    assert set(aws_jobs) >= {name for name, _ in _deploy_jobs().values()}
    for name, job in aws_jobs.items():
        permissions = job.get("permissions", workflow_permissions)
        assert isinstance(permissions, dict), name
        assert permissions.get("id-token") == "write", name
        assert _environment(job), f"{name} takes an AWS role outside a GitHub environment"
        for step in _uses(job, AWS_CREDENTIALS):
            assert step["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
            assert step["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    for name, job in _jobs().items():
        if name not in aws_jobs:
            assert "id-token" not in job.get("permissions", {}), name


def test_each_stack_deploys_in_its_own_environment() -> None:
    for stack, (name, job) in _deploy_jobs().items():
        assert _environment(job) == stack, name


def test_prod_is_deployed_after_dev_and_only_from_a_push_to_main() -> None:
    deploys = _deploy_jobs()
    dev_name, dev = deploys["dev"]
    _, prod = deploys["prod"]
    test_name, _ = _job_running("make test")
    audit_name, _ = _job_running("pip-audit")
    assert _needs(dev) >= {test_name, audit_name}
    assert dev_name in _needs(prod)
    for job in (dev, prod):
        condition = _condition(job)
        assert "github.event_name == 'push'" in condition
        assert "github.ref == 'refs/heads/main'" in condition
        assert "||" not in condition


def test_every_preview_and_up_runs_the_policy_pack() -> None:
    commands = [c for job in _jobs().values() for c in _pulumi_commands(job)]
    assert {c.split()[1] for c in commands} == {"preview", "up"}
    for command in commands:
        assert re.search(r"--policy-pack[ =]policy(\s|$)", command), command
        assert STACK_OPTION.search(command), command


def test_pull_requests_are_previewed_on_both_stacks() -> None:
    previews = [(n, j) for n, j in _jobs().items() if "pulumi preview" in _script(j)]
    assert len(previews) == 1
    name, job = previews[0]
    assert "pull_request" in _condition(job), name
    assert job["strategy"]["matrix"]["stack"] == list(STACKS)
    environment = _environment(job)
    assert environment is not None
    assert "${{ matrix.stack }}" in environment
    for step in _steps(job):
        if "pulumi preview" in str(step.get("run", "")):
            assert '--stack "$STACK"' in step["run"]
            assert step["env"]["STACK"] == "${{ matrix.stack }}"


def test_pulumi_runs_in_the_locked_venv() -> None:
    sdk = re.search(
        r"^pulumi==(\S+)", (ROOT / "requirements" / "dev.txt").read_text(encoding="utf-8"), re.M
    )
    assert sdk, "pulumi is not pinned in requirements/dev.txt"
    assert str(_load()["env"]["PULUMI_VERSION"]) == sdk.group(1)
    for name, job in _jobs().items():
        script = _script(job)
        if not _pulumi_commands(job):
            continue
        assert "make deps" in script, name
        installs = _uses(job, PULUMI_ACTION)
        assert len(installs) == 1, name
        # Install only: with no `command`, the action runs nothing (and installs no packages).
        assert "command" not in installs[0].get("with", {}), name
        assert installs[0]["with"]["pulumi-version"] == "${{ env.PULUMI_VERSION }}"
        for step in _steps(job):
            run = str(step.get("run", ""))
            if PULUMI_COMMAND.search(run) or "pulumi stack output" in run:
                assert run.startswith("source .venv/bin/activate\n"), (name, step)
        for line in re.findall(r"\bpulumi\s+install\b[^\n]*", script):
            assert "--no-dependencies" in line, (name, line)


def test_pull_requests_run_the_tests_and_audit_the_locks() -> None:
    for fragment in ("make test", "pip-audit"):
        name, job = _job_running(fragment)
        assert "if" not in job, f"{name} must run on every pull request and push"
    _, test = _job_running("make test")
    java = _uses(test, "actions/setup-java@")
    assert [s["with"] for s in java] == [{"distribution": "temurin", "java-version": "17"}]
    assert _uses(test, "actions/setup-node@")
    python = _uses(test, "actions/setup-python@")
    assert [s["with"]["python-version"] for s in python] == ["3.11"]
    _, audit = _job_running("pip-audit")
    script = _script(audit)
    assert "--require-hashes -r requirements/audit.txt" in script  # pip-audit itself, locked
    assert "pip-audit==" in (ROOT / "requirements" / "audit.txt").read_text()
    for lock in ("requirements/lambda.txt", "requirements/dev.txt"):
        assert lock in script
    for flag in ("--require-hashes", "--disable-pip", "-r "):
        assert flag in script


def test_every_job_has_a_timeout() -> None:
    for name, job in _jobs().items():
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int), name
        assert 0 < timeout <= 60, name


def test_deploys_of_one_stack_never_overlap() -> None:
    groups: dict[str, str] = {}
    for stack, (name, job) in _deploy_jobs().items():
        concurrency = job["concurrency"]
        assert isinstance(concurrency, dict), name
        assert re.search(rf"\b{stack}\b", concurrency["group"]), name
        assert concurrency["cancel-in-progress"] is False, name
        groups[stack] = concurrency["group"]
    assert len(set(groups.values())) == len(STACKS)
    deploy_names = {name for name, _ in _deploy_jobs().values()}
    for name, job in _jobs().items():
        concurrency = job.get("concurrency")
        if name not in deploy_names and isinstance(concurrency, dict):
            # Another job in a deploy's group could displace a queued deploy.
            assert concurrency["group"] not in groups.values(), name


def test_actions_are_pinned_by_major_version() -> None:
    for name, job in _jobs().items():
        for step in _steps(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), (name, step["uses"])
