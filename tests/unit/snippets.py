"""The taskcore usage snippet of docs/taskcore.md, and what the page says it prints: run by
`test_taskcore_snippet.py` here and by `test_packaging.py` against an installed wheel."""

from __future__ import annotations

import re
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
