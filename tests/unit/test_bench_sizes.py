"""The bench's `sizes` section, on small zips written here by the real `deterministic_zip`:
what it counts, whom it attributes each file to, and how it judges against Lambda's limits."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from bench import sizes
from infra.packaging import deterministic_zip


def _files(root: Path, contents: dict[str, bytes]) -> list[tuple[str, Path]]:
    entries = []
    for name, data in contents.items():
        path = root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entries.append((name, path))
    return entries


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    """A layer of two distributions (one spelt differently from its import name), a module no
    RECORD lists, and a RECORD line for a file that was removed (a console script)."""
    record = (
        "dateutil/__init__.py,sha256=x,3000\n"
        "dateutil/tz.py,sha256=x,5000\n"
        "python_dateutil-2.9.dist-info/METADATA,,\n"
        "python_dateutil-2.9.dist-info/RECORD,,\n"
        "../../bin/dateutil-cli,sha256=x,10\n"
    )
    contents = {
        "python/dateutil/__init__.py": b"a" * 3000,
        "python/dateutil/tz.py": os.urandom(5000),  # incompressible: zipped ~ unzipped
        "python/python_dateutil-2.9.dist-info/METADATA": b"Name: python-dateutil\n",
        "python/python_dateutil-2.9.dist-info/RECORD": record.encode(),
        "python/six-1.17.dist-info/RECORD": b"six.py,,\nsix-1.17.dist-info/RECORD,,\n",
        "python/six.py": b"s" * 100,
        "python/loose.py": b"l" * 10,
    }
    return deterministic_zip(_files(tmp_path, contents), tmp_path / "layer.zip")


def test_measure_counts_the_files_and_their_unzipped_bytes(layer: Path) -> None:
    measured = sizes.measure(layer, root=sizes.LAYER_ROOT)
    with zipfile.ZipFile(layer) as archive:
        infos = archive.infolist()
    assert measured.files == len(infos) == 7
    assert measured.unzipped == sum(i.file_size for i in infos)
    assert measured.zipped == layer.stat().st_size


def test_measure_attributes_files_to_distributions_through_their_record(layer: Path) -> None:
    packages = sizes.measure(layer, root=sizes.LAYER_ROOT).packages
    by_name = {p.name: p for p in packages}
    assert list(by_name) == ["python-dateutil", "six", "loose.py"]  # largest unzipped first
    dateutil = by_name["python-dateutil"]
    with zipfile.ZipFile(layer) as archive:
        owned = [
            i.file_size
            for i in archive.infolist()
            if i.filename.startswith(("python/dateutil/", "python/python_dateutil-"))
        ]
    assert dateutil.files == len(owned) == 4
    assert dateutil.unzipped == sum(owned)
    assert dateutil.zipped > 5000 > by_name["six"].zipped
    assert (by_name["loose.py"].files, by_name["loose.py"].unzipped) == (1, 10)
    assert sum(p.unzipped for p in packages) == sizes.measure(layer).unzipped


def test_without_a_record_packages_are_top_level_names(tmp_path: Path) -> None:
    contents = {"taskcore/model.py": b"m" * 50, "taskcore/x.py": b"", "handlers/a.py": b"h"}
    code = deterministic_zip(_files(tmp_path, contents), tmp_path / "code.zip")
    packages = sizes.measure(code).packages
    assert [(p.name, p.files, p.unzipped) for p in packages] == [
        ("taskcore", 2, 50),
        ("handlers", 1, 1),
    ]


def test_human_sizes_use_powers_of_two() -> None:
    assert sizes.human(65_420) == "64 KB"
    assert sizes.human(18_488_932) == "17.6 MB"
    assert sizes.human(262_144_000) == "250 MB"  # Lambda's own number for its 250 MB
    assert sizes.human(sizes.UPLOAD_LIMIT) == "50 MB"


def _archive(name: str, zipped: int, unzipped: int) -> sizes.Archive:
    return sizes.Archive(Path(name), zipped=zipped, unzipped=unzipped, files=1)


def test_rows_judge_the_sum_unzipped_and_each_zip_on_its_own() -> None:
    code = _archive("code.zip", 64 * 1024, 256 * 1024)
    layer = _archive("layer.zip", 20 * sizes.MB, 200 * sizes.MB)
    rows = sizes.rows(code, layer)
    assert rows[0] == (
        "sizes: code + layer, unzipped",
        "80.1% (200.2 MB of 250 MB)",
        "<= 250 MB",
        True,
    )
    assert rows[1] == (
        "sizes: layer zip, direct upload",
        "40.0% (20 MB of 50 MB)",
        "<= 50 MB",
        True,
    )
    assert rows[2][3] is True

    over = sizes.rows(code, _archive("layer.zip", 50 * sizes.MB + 1, 250 * sizes.MB))
    assert [ok for *_, ok in over] == [False, False, True]
    exactly = sizes.rows(_archive("c.zip", 1, 0), _archive("l.zip", 1, sizes.UNZIPPED_LIMIT))
    assert exactly[0][3] is True  # the limit itself is allowed


def test_render_and_data(layer: Path, tmp_path: Path) -> None:
    code = deterministic_zip(_files(tmp_path, {"handlers/a.py": b"h"}), tmp_path / "code.zip")
    measured_code = sizes.measure(code)
    measured_layer = sizes.measure(layer, root=sizes.LAYER_ROOT)

    text = sizes.render(measured_code, measured_layer, top=2)
    assert "largest packages in the layer, of 3:" in text
    assert "python-dateutil" in text
    assert "six" in text
    assert "loose.py" not in text  # beyond the top 2

    data = json.loads(json.dumps(sizes.data(measured_code, measured_layer)))
    assert data["unzipped_bytes"] == measured_code.unzipped + measured_layer.unzipped
    assert data["limits_bytes"] == {"unzipped": 262_144_000, "direct_upload_zip": 52_428_800}
    assert data["layer"]["files"] == 7
    assert data["layer"]["packages"][0]["name"] == "python-dateutil"
    assert data["code"]["zipped_vs_upload_limit"] == code.stat().st_size / 52_428_800
