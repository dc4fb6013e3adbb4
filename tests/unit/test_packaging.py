"""A second service can `pip install ./` and use taskcore.testing: build the wheel, install it in
a fresh virtualenv outside the checkout, and run the snippet of docs/taskcore.md there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.unit.snippets import taskcore_snippet

ROOT = Path(__file__).parents[2]


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: run `make deps` first"
    return found


def test_wheel_installs_and_serves_another_service(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("taskcore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "taskcore/py.typed" in names
    assert "taskcore/testing.py" in names
    assert not [n for n in names if n.startswith(("tests/", "handlers/", "infra/"))]

    venv = tmp_path / "other-service"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
    )
    code, expected = taskcore_snippet()
    (tmp_path / "service_test.py").write_text(code)
    out = subprocess.run(
        [str(python), "service_test.py"], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert out.stdout == expected
    where = subprocess.run(
        [str(python), "-c", "import taskcore; print(taskcore.__file__)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout
