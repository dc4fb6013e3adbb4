"""The documented deploy path runs the program in the locked environment, and `pulumi install`
cannot change it.

The Pulumi CLI cannot be installed here, so this replays what its Python language host does
for `toolchain: pip` with `virtualenv: .venv` (pulumi/pulumi `sdk/python/toolchain/pip.go`):
- `pulumi install`: `python3 -m venv <abs .venv>` (over the existing one), then
  `.venv/bin/python -m pip install --upgrade pip setuptools wheel`, then
  `.venv/bin/python -m pip install -r requirements.txt` (the project root's);
- `pulumi up`: `.venv/bin/python -m pip list --format json` (a failure stops the run), then the
  program with `.venv/bin/python`, `VIRTUAL_ENV` set and `.venv/bin` first on `PATH`.
It does so in a fresh copy of the repository, on a `.venv` built the way `make deps` builds it,
and compares every installed distribution and version before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra import packaging
from stack.config import ROOT

PROGRAM_MODULES = (
    "infra.data",
    "infra.functions",
    "infra.limits",
    "infra.tags",
    "stack.manifest",
    "taskcore.adapters.dynamodb",
    "pynamodb",
    "pulumi_aws",
    "pulumi_policy",
)


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _installed(python: Path, cwd: Path) -> dict[str, str]:
    listed = json.loads(_run(python, "-m", "pip", "list", "--format", "json", cwd=cwd))
    return {d["name"].lower().replace("_", "-"): d["version"] for d in listed}


def _language_host_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONHOME", "PYTHONPATH"}}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the tracked files, with `.venv` made as `make deps` makes it."""
    copy = tmp_path_factory.mktemp("checkout")
    tracked = _run("git", "ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    uv, python = packaging._uv(), shutil.which("python3")
    assert python is not None
    _run(uv, "venv", "--quiet", "--python", python, ".venv", cwd=copy)
    venv_python = copy / ".venv" / "bin" / "python"
    lock = "requirements/dev.txt"
    _run(uv, "pip", "sync", "--quiet", "--python", venv_python, "--require-hashes", lock, cwd=copy)
    _run(uv, "pip", "install", "--quiet", "--python", venv_python, "--no-deps", "-e", ".", cwd=copy)
    return copy


def test_the_project_uses_the_pip_toolchain_in_dot_venv() -> None:
    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]
    assert runtime == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    root_requirements = (ROOT / "requirements.txt").read_text().split()
    assert "--require-hashes" in root_requirements
    assert "requirements/dev.txt" in root_requirements


def test_pulumi_install_leaves_the_locked_environment_as_it_was(checkout: Path) -> None:
    venv = checkout / ".venv"
    python = venv / "bin" / "python"
    before = _installed(python, checkout)
    assert {"pip", "pynamodb", "pulumi", "pulumi-aws", "pulumi-policy"} <= before.keys()

    # pulumi install (toolchain pip)
    system_python = shutil.which("python3")
    assert system_python is not None
    _run(system_python, "-m", "venv", venv.resolve(), cwd=checkout)
    _run(python, "-m", "pip", "install", "--upgrade", "pip", "setuptools", "wheel", cwd=checkout)
    _run(python, "-m", "pip", "install", "-r", "requirements.txt", cwd=checkout)

    after = _installed(python, checkout)
    assert after == before
    assert not (checkout / "uv.lock").exists()


def test_pulumi_up_runs_the_program_in_the_locked_environment(checkout: Path) -> None:
    venv = checkout / ".venv"
    python = venv / "bin" / "python"
    env = _language_host_env(venv)
    _run(python, "-m", "pip", "list", "--format", "json", cwd=checkout, env=env)
    imports = "; ".join(f"import {m}" for m in PROGRAM_MODULES)
    _run(python, "-c", f"{imports}; import sys; print(sys.prefix)", cwd=checkout, env=env)
