"""The README's taskcore snippet runs and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def readme_snippet() -> tuple[str, str]:
    text = README.read_text()
    match = re.search(
        r"<!-- snippet:taskcore-usage -->\n```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```",
        text,
        re.S,
    )
    assert match, "README lost its taskcore-usage snippet"
    return match.group(1), match.group(2)


def test_readme_snippet_prints_what_the_readme_says(tmp_path: Path) -> None:
    code, expected = readme_snippet()
    script = tmp_path / "snippet.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True)
    assert out.stdout == expected
