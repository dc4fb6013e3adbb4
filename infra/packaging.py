"""Lambda packaging: one code archive and one dependency layer, both byte-for-byte reproducible.

- The code archive holds `taskcore/`, `stack/` and `handlers/` (no tests, no bytecode). Every
  function runs from it; only the handler setting differs.
- The layer holds the third-party dependencies from `requirements/lambda.txt` (hash-locked,
  resolved for CPython 3.12 on arm64 Linux), installed for that platform whatever machine builds
  it: only binary wheels, hashes checked. boto3/botocore are in it too, although the Lambda
  runtime bundles a copy: ours is the version every test ran against, and the runtime's changes
  without notice.

Zips are deterministic (sorted entries, fixed timestamps and permissions), so an unchanged
source gives an unchanged archive hash and Pulumi sees no diff. Every entry is 0644 but the
startup scripts of the manifest's web functions (`handlers/download.sh`), 0755: the Lambda Web
Adapter execs `${LAMBDA_TASK_ROOT}/${_HANDLER}`, and Lambda extracts the archive with the unix
modes its entries record. The mode comes from the manifest, not from the checkout's file mode,
so a checkout that lost the bit (core.fileMode off, a Windows copy) builds the same archive.
The layer is built once per lock file: it is cached under `.build/` (git-ignored), keyed by the
lock's hash and the target platform. `python -m infra.packaging` (`make layer`) builds both and
prints their paths.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from stack import manifest

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build"
LOCK_FILE = ROOT / "requirements" / "lambda.txt"
CODE_PACKAGES = ("taskcore", "stack", "handlers")

RUNTIME = "python3.12"
ARCHITECTURE = "arm64"
PYTHON_VERSION = "3.12"
UV_PLATFORM = "aarch64-manylinux2014"  # pip's spelling: manylinux2014_aarch64
LAYER_FORMAT = "2"  # bump when the layer's layout changes, to miss the old cache entries

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
_UNIX = 3  # a zip entry's "made by" system: its external attributes hold a unix mode
_BYTECODE = frozenset({"__pycache__"})
_NOT_CODE = frozenset({"__pycache__", "tests", "test"})  # our packages ship no tests
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def _files(directory: Path, prefix: str, skipped: frozenset[str]) -> Iterator[tuple[str, Path]]:
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part in skipped for part in relative.parts):
            continue
        if path.is_file() and not path.name.endswith(_SKIPPED_SUFFIXES):
            yield f"{prefix}{relative.as_posix()}", path


def deterministic_zip(
    entries: Iterable[tuple[str, Path]], target: Path, executables: Collection[str] = ()
) -> Path:
    """Write `entries` (archive name, file) sorted, with fixed times and modes (0755 for the
    names in `executables`, 0644 for the rest); atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".zip.tmp")
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for name, path in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.create_system = _UNIX  # whatever system builds it
                mode = EXECUTABLE_MODE if name in executables else FILE_MODE
                info.external_attr = mode << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def code_entries(root: Path = ROOT) -> list[tuple[str, Path]]:
    return [
        entry
        for package in CODE_PACKAGES
        for entry in _files(root / package, f"{package}/", _NOT_CODE)
    ]


def executables() -> frozenset[str]:
    """What the code archive marks executable: each web function's startup script, which the
    Web Adapter runs as a program."""
    return frozenset(f.web.script for f in manifest.FUNCTIONS if f.web is not None)


def build_code_archive(root: Path = ROOT, build_dir: Path = BUILD_DIR) -> Path:
    """The functions' code: `taskcore/`, `stack/` and `handlers/`. Cheap, so built on every run."""
    entries = code_entries(root)
    scripts = executables()
    if missing := sorted(scripts - {name for name, _ in entries}):
        raise ValueError(f"{missing}: a web function's startup script is not in the code archive")
    return deterministic_zip(entries, build_dir / "code.zip", scripts)


def layer_key(lock_file: Path = LOCK_FILE) -> str:
    digest = hashlib.sha256(lock_file.read_bytes())
    digest.update(f"{UV_PLATFORM}|{PYTHON_VERSION}|{LAYER_FORMAT}".encode())
    return digest.hexdigest()[:16]


def _uv() -> str:
    for candidate in (
        os.environ.get("UV"),
        shutil.which("uv"),
        str(ROOT / ".tools" / "bin" / "uv"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError("uv not found: run `make deps` (it bootstraps uv into .tools/)")


def build_layer(lock_file: Path = LOCK_FILE, build_dir: Path = BUILD_DIR) -> Path:
    """The dependency layer (`python/...` inside the zip), from the cache when the lock is
    unchanged. Equivalent to `pip install --platform manylinux2014_aarch64 --only-binary=:all:
    --python-version 3.12 --implementation cp --require-hashes --target <dir>/python -r lock`,
    done with the project's own (hash-locked) uv."""
    target = build_dir / f"layer-{layer_key(lock_file)}.zip"
    if target.exists():
        return target
    build_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build_dir, prefix="layer-") as work:
        site = Path(work) / "python"
        subprocess.run(  # noqa: S603 - fixed arguments, our own lock file
            [
                _uv(),
                "pip",
                "install",
                "--quiet",
                "--target",
                str(site),
                "--python-platform",
                UV_PLATFORM,
                "--python-version",
                PYTHON_VERSION,
                "--only-binary",
                ":all:",
                "--require-hashes",
                "--no-deps",  # the lock is complete: nothing but what it pins
                "--requirement",
                str(lock_file),
            ],
            check=True,
            env={**os.environ, "UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never"},
        )
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: no use in a layer
        (site / ".lock").unlink(missing_ok=True)  # uv's lock on its target directory
        deterministic_zip(_files(site, "python/", _BYTECODE), target)
    return target


def main() -> None:
    print(build_code_archive())
    print(build_layer())


if __name__ == "__main__":
    main()
