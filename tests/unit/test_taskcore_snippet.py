"""The taskcore snippet of docs/taskcore.md runs and prints what the page says it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.snippets import taskcore_snippet


def test_the_snippet_prints_what_the_page_says(tmp_path: Path) -> None:
    code, expected = taskcore_snippet()
    script = tmp_path / "snippet.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True)
    assert out.stdout == expected
