"""The taskcore snippet of docs/taskcore.md runs and prints what the page says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).parents[2] / "docs" / "taskcore.md"


def taskcore_snippet() -> tuple[str, str]:
    text = PAGE.read_text()
    match = re.search(
        r"<!-- snippet:taskcore-usage -->\n```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```",
        text,
        re.S,
    )
    assert match, "docs/taskcore.md lost its taskcore-usage snippet"
    return match.group(1), match.group(2)


def test_the_snippet_prints_what_the_page_says(tmp_path: Path) -> None:
    code, expected = taskcore_snippet()
    script = tmp_path / "snippet.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True)
    assert out.stdout == expected
