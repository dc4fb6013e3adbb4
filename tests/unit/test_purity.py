"""The pure core imports no AWS or Pulumi SDK: statically, and at run time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

TASKCORE = Path(__file__).parents[2] / "taskcore"
# The pure core: taskcore's own modules and the use-case package, not the adapters.
CORE = sorted([*TASKCORE.glob("*.py"), *(TASKCORE / "services").glob("*.py")])


def module_name(path: Path) -> str:
    """`model` for taskcore/model.py, `services` for taskcore/services/__init__.py,
    `services.tasks` for taskcore/services/tasks.py."""
    parts = path.relative_to(TASKCORE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FORBIDDEN = ("boto3", "botocore", "pynamodb", "pulumi", "pulumi_aws", "aws_lambda_powertools")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_are_found() -> None:
    names = {module_name(p) for p in CORE}
    assert {"model", "services", "ports", "events", "errors"} <= names


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(TASKCORE)))
def test_core_module_imports_no_sdk(path: Path) -> None:
    assert imported_roots(path).isdisjoint(FORBIDDEN)


def test_detector_sees_sdk_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom botocore.exceptions import ClientError\nimport boto3.session\n")
    assert {"botocore", "boto3"} <= imported_roots(bad)


def test_importing_the_core_loads_no_sdk() -> None:
    modules = ", ".join(f"taskcore.{module_name(p)}" for p in CORE if module_name(p))
    code = (
        f"import sys, json, {modules}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []
