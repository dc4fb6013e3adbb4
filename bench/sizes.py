"""What the deployment costs in bytes: the code archive and the dependency layer, built by
`infra.packaging` exactly as `make layer` builds them, against AWS Lambda's size limits.

- Unzipped, a function's code plus all its layers must stay within 250 MB: Lambda refuses
  more with "Unzipped size must be smaller than 262144000 bytes", so its MB is 2**20 bytes,
  and so is this module's. Every function runs the one code archive with the one layer, so
  the sum of the two is the figure.
- Zipped, an archive sent in the API request itself is limited to 50 MB (larger ones must go
  through S3). Pulumi sends both of ours that way (`code=` an archive, no S3 object), so the
  limit applies to each zip on its own.

The unzipped size is the sum of the entries' sizes as the zip records them; the packages in
the layer are its distributions, each file attributed through the `RECORD` of the wheel that
installed it (a file no `RECORD` lists is counted under its top-level name).
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from infra import packaging

MB = 2**20
UNZIPPED_LIMIT = 250 * MB  # function + layers, extracted
UPLOAD_LIMIT = 50 * MB  # one zip uploaded directly, in the request
LAYER_ROOT = "python/"  # where the Python runtime finds a layer's packages
TOP = 5  # packages listed


@dataclass(frozen=True)
class Package:
    name: str
    files: int = 0
    unzipped: int = 0
    zipped: int = 0  # compressed bytes of its entries, without the zip's own headers


@dataclass(frozen=True)
class Archive:
    path: Path
    zipped: int  # the file's size: what is uploaded
    unzipped: int
    files: int
    packages: list[Package] = field(default_factory=list)  # largest unzipped first


def measure(path: Path, root: str = "") -> Archive:
    """Sizes and file count of the zip at `path`, and its packages under `root` by size."""
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        owners = _owners(archive, root)
    totals: dict[str, list[int]] = {}
    for info in infos:
        relative = info.filename.removeprefix(root)
        counts = totals.setdefault(owners.get(relative) or relative.split("/", 1)[0], [0, 0, 0])
        counts[0] += 1
        counts[1] += info.file_size
        counts[2] += info.compress_size
    packages = [Package(name, *counts) for name, counts in totals.items()]
    return Archive(
        path=path,
        zipped=path.stat().st_size,
        unzipped=sum(i.file_size for i in infos),
        files=len(infos),
        packages=sorted(packages, key=lambda p: (-p.unzipped, p.name)),
    )


def _owners(archive: zipfile.ZipFile, root: str) -> dict[str, str]:
    """{path below `root`: distribution name}, from each `<root>*.dist-info/RECORD`."""
    names = set(archive.namelist())
    owners: dict[str, str] = {}
    for name in sorted(names):
        info_dir, _, file = name.removeprefix(root).rpartition("/")
        if file != "RECORD" or "/" in info_dir or not info_dir.endswith(".dist-info"):
            continue
        distribution = info_dir.split("-", 1)[0]
        metadata = f"{root}{info_dir}/METADATA"
        if metadata in names:
            text = archive.read(metadata).decode("utf-8", "replace")
            distribution = HeaderParser().parsestr(text)["Name"] or distribution
        for row in csv.reader(io.StringIO(archive.read(name).decode("utf-8", "replace"))):
            if row and row[0]:
                owners[row[0]] = distribution
    return owners


def percent(size: int, limit: int) -> float:
    return 100 * size / limit


def human(n: int) -> str:
    """Bytes for a reader: KB below one MB, else MB, one decimal unless whole (powers of 2)."""
    if n < MB:
        return f"{n / 1024:.0f} KB"
    return f"{n // MB} MB" if n % MB == 0 else f"{n / MB:.1f} MB"


def of_limit(size: int, limit: int) -> str:
    return f"{percent(size, limit):.1f}% ({human(size)} of {human(limit)})"


def rows(code: Archive, layer: Archive) -> list[tuple[str, str, str, bool]]:
    """(figure, measured, target, within the limit) for the summary table."""
    unzipped = code.unzipped + layer.unzipped
    return [
        (
            "sizes: code + layer, unzipped",
            of_limit(unzipped, UNZIPPED_LIMIT),
            f"<= {human(UNZIPPED_LIMIT)}",
            unzipped <= UNZIPPED_LIMIT,
        ),
        *(
            (
                f"sizes: {label} zip, direct upload",
                of_limit(a.zipped, UPLOAD_LIMIT),
                f"<= {human(UPLOAD_LIMIT)}",
                a.zipped <= UPLOAD_LIMIT,
            )
            for label, a in (("layer", layer), ("code", code))
        ),
    ]


def render(code: Archive, layer: Archive, top: int = TOP) -> str:
    lines = [f"{'archive':<36} {'zip':>9} {'unzipped':>9} {'files':>6}"]
    for archive in (code, layer):
        lines.append(
            f"{archive.path.name:<36} {human(archive.zipped):>9} {human(archive.unzipped):>9} "
            f"{archive.files:>6}"
        )
    lines += ["", f"largest packages in the layer, of {len(layer.packages)}:"]
    lines.append(f"{'package':<36} {'zip':>9} {'unzipped':>9} {'files':>6} {'share':>6}")
    for package in layer.packages[:top]:
        share = percent(package.unzipped, layer.unzipped) if layer.unzipped else 0.0
        lines.append(
            f"{package.name:<36} {human(package.zipped):>9} {human(package.unzipped):>9} "
            f"{package.files:>6} {share:>5.1f}%"
        )
    return "\n".join(lines)


def data(code: Archive, layer: Archive) -> dict[str, Any]:
    def figures(a: Archive) -> dict[str, Any]:
        return {
            "file": a.path.name,
            "zipped_bytes": a.zipped,
            "unzipped_bytes": a.unzipped,
            "files": a.files,
            "zipped_vs_upload_limit": a.zipped / UPLOAD_LIMIT,
            "packages": [
                {
                    "name": p.name,
                    "files": p.files,
                    "unzipped_bytes": p.unzipped,
                    "zipped_bytes": p.zipped,
                }
                for p in a.packages
            ],
        }

    unzipped = code.unzipped + layer.unzipped
    return {
        "code": figures(code),
        "layer": figures(layer),
        "unzipped_bytes": unzipped,
        "unzipped_vs_limit": unzipped / UNZIPPED_LIMIT,
        "limits_bytes": {"unzipped": UNZIPPED_LIMIT, "direct_upload_zip": UPLOAD_LIMIT},
    }


def build(log: Callable[[str], None]) -> tuple[Archive, Archive]:
    """Build both archives with `infra.packaging` (the layer from its cache when the lock is
    unchanged, as `make layer` does) and measure them."""
    started = time.perf_counter()
    code = packaging.build_code_archive()
    log(f"code archive: {_shown(code)} ({time.perf_counter() - started:.1f} s)")
    cached = set(packaging.BUILD_DIR.glob("layer-*.zip"))
    started = time.perf_counter()
    layer = packaging.build_layer()
    how = "from the cache" if layer in cached else "built"
    log(f"layer: {_shown(layer)}, {how} ({time.perf_counter() - started:.1f} s)")
    return measure(code), measure(layer, root=LAYER_ROOT)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
