"""Lambda packaging, for real: the dependency layer is installed from PyPI for arm64 Linux and
CPython 3.12 (uv's cache makes repeat runs quick), and the code archive is built from the tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import packaging
from stack.manifest import FUNCTIONS

ELF_MACHINE_AARCH64 = 183
PURE_TAG = re.compile(r"^py[23](\.py3)?-none-any$")
ARM_TAG = re.compile(r"^cp3\d+-(cp3\d+|abi3)-(manylinux|musllinux)\w*_aarch64$")


def _pins(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", lock.read_text(), re.MULTILINE)
    return {name.lower().replace("-", "_"): version for name, version in pins}


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packaging.build_layer(build_dir=tmp_path_factory.mktemp("layer"))


def test_the_layer_holds_the_locked_dependencies_under_python(layer: Path) -> None:
    with zipfile.ZipFile(layer) as archive:
        names = archive.namelist()
    assert all(n.startswith("python/") for n in names)
    top = {n.split("/")[1] for n in names}
    assert {"attrs", "cattrs", "pynamodb", "aws_lambda_powertools", "ulid", "boto3"} <= top
    installed = {
        m.group(1).lower(): m.group(2)
        for n in top
        if (m := re.fullmatch(r"(.+)-([^-]+)\.dist-info", n))
    }
    assert installed == _pins(packaging.LOCK_FILE)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("python/bin/")]
    assert "python/.lock" not in names  # uv's lock file on the target directory


def test_the_layer_is_built_for_arm64_linux(layer: Path) -> None:
    with zipfile.ZipFile(layer) as archive:
        tags = [
            line.split(": ", 1)[1]
            for name in archive.namelist()
            if name.endswith(".dist-info/WHEEL")
            for line in archive.read(name).decode().splitlines()
            if line.startswith("Tag: ")
        ]
        assert tags
        assert all(PURE_TAG.match(t) or ARM_TAG.match(t) for t in tags), tags
        for name in archive.namelist():
            if re.search(r"\.so(\.|$)", name):
                assert "x86_64" not in name, name
                header = archive.read(name)[:20]
                assert header[:4] == b"\x7fELF", name
                assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, name


def test_the_layer_is_cached_by_the_locks_hash(layer: Path, tmp_path: Path) -> None:
    assert layer.name == f"layer-{packaging.layer_key()}.zip"
    before = layer.stat().st_mtime_ns
    assert packaging.build_layer(build_dir=layer.parent) == layer
    assert layer.stat().st_mtime_ns == before  # served from the cache, not rebuilt
    changed = tmp_path / "lambda.txt"
    changed.write_text(packaging.LOCK_FILE.read_text() + "# another lock\n")
    assert packaging.layer_key(changed) != packaging.layer_key()


def test_the_layer_refuses_a_dependency_whose_hash_does_not_match(tmp_path: Path) -> None:
    text = packaging.LOCK_FILE.read_text()
    start = text.index("\nsix==")
    end = text.index("\n", text.index("# via", start))
    tampered = (
        text[:start]
        + re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, text[start:end])
        + text[end:]
    )
    lock = tmp_path / "lambda.txt"
    lock.write_text(tampered)
    with pytest.raises(subprocess.CalledProcessError):
        packaging.build_layer(lock_file=lock, build_dir=tmp_path / "build")
    assert not list((tmp_path / "build").glob("*.zip"))


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packaging.build_code_archive(build_dir=tmp_path_factory.mktemp("code"))


def test_the_code_archive_holds_taskcore_stack_and_handlers_and_no_tests(code: Path) -> None:
    with zipfile.ZipFile(code) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {n.split("/")[0] for n in names} == {"taskcore", "stack", "handlers"}
    assert {"taskcore/__init__.py", "taskcore/model.py", "stack/manifest.py"} <= set(names)
    for function in FUNCTIONS:
        module = function.module.replace(".", "/")  # a module's file, or a package's __init__
        assert {f"{module}.py", f"{module}/__init__.py"} & set(names), function.handler
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_the_code_archive_is_reproducible(code: Path, tmp_path: Path) -> None:
    again = packaging.build_code_archive(build_dir=tmp_path)
    assert again.read_bytes() == code.read_bytes()


def _unix_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0o7777


def test_the_web_functions_startup_scripts_are_executable_in_the_archive(code: Path) -> None:
    """The Web Adapter execs `${LAMBDA_TASK_ROOT}/${_HANDLER}`: the download's script must be
    0755 in the zip (a unix entry), and nothing else executable."""
    scripts = {f.web.script for f in FUNCTIONS if f.web is not None}
    assert scripts == {"handlers/download.sh"}
    with zipfile.ZipFile(code) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        assert archive.read("handlers/download.sh").startswith(b"#!/bin/sh\n")
    for name, info in infos.items():
        assert info.create_system == 3, name  # unix: the external attributes are a mode
        assert _unix_mode(info) == (0o755 if name in scripts else 0o644), name


def test_the_mode_comes_from_the_manifest_not_the_checkout(code: Path, tmp_path: Path) -> None:
    """A checkout that lost the executable bit builds the same archive, byte for byte."""
    root = tmp_path / "checkout"
    for package in packaging.CODE_PACKAGES:
        shutil.copytree(
            packaging.ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    script = root / "handlers" / "download.sh"
    script.chmod(0o644)
    again = packaging.build_code_archive(root=root, build_dir=tmp_path / "build")
    assert again.read_bytes() == code.read_bytes()


def test_every_handler_resolves_inside_the_code_archive(code: Path, tmp_path: Path) -> None:
    """Import each manifest handler from the archive alone (the layer's dependencies come from
    this environment), as the Lambda runtime would."""
    handlers = sorted({f.handler for f in FUNCTIONS})
    script = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(code)!r})\n"
        f"for handler in {handlers!r}:\n"
        "    module, _, name = handler.partition(':')\n"
        "    loaded = importlib.import_module(module)\n"
        f"    assert loaded.__file__.startswith({str(code)!r}), loaded.__file__\n"
        "    assert callable(getattr(loaded, name)), handler\n"
    )
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env)


def test_the_layer_holds_the_compiled_token_verifier_for_arm64(layer: Path) -> None:
    """pyjwt[crypto]'s cryptography and cffi (issue #16) are compiled: their extension modules
    must be aarch64 ELF, which the check above verifies for every `.so`; here, that they are
    there at all, with uvicorn for the download."""
    with zipfile.ZipFile(layer) as archive:
        names = archive.namelist()
    modules = [n for n in names if re.search(r"\.so(\.|$)", n)]
    assert any(n.startswith("python/cryptography/") for n in modules), modules
    assert any("_cffi_backend" in n for n in modules), modules
    assert {"python/jwt/__init__.py", "python/uvicorn/__init__.py"} <= set(names)


def test_compiled_dependencies_come_as_arm64_wheels(tmp_path: Path) -> None:
    """A layer from a lock of one small compiled package, resolved as `make lock` does: a
    second, independent case of what the layer's own check above covers."""
    lock = Path(__file__).with_name("canary-lock.txt")
    layer = packaging.build_layer(lock_file=lock, build_dir=tmp_path)
    with zipfile.ZipFile(layer) as archive:
        modules = [n for n in archive.namelist() if re.search(r"\.so(\.|$)", n)]
        assert modules
        for name in modules:
            assert "x86_64" not in name, name
            assert "aarch64" in name, name
            header = archive.read(name)[:20]
            assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, name
