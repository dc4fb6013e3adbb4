"""The tree's parts and who may import whom, read from the source (every import statement,
those under `if TYPE_CHECKING:` and inside functions included).

- `stack/` is the one description of the stack: pure, importing none of its readers;
- `infra/` (the Pulumi program) and `local_platform/` (make dev) both read `stack/`, and
  neither imports the other;
- `handlers/` run on Lambda: they import neither reader;
- `bench/` measures the product, not the test suite: it imports nothing from `tests/`;
- `infra/`'s modules import each other without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("taskcore", "stack", "handlers", "infra", "local_platform", "policy", "bench")


def imports_of(path: Path) -> Iterator[str]:
    """Every module `path` imports, absolute names (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def part_imports(part: str) -> dict[str, set[str]]:
    """Each module of `part` (dotted name) -> the top-level names it imports."""
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): set(imports_of(path))
        for path in sorted((ROOT / part).rglob("*.py"))
    }


@pytest.mark.parametrize(
    ("part", "forbidden"),
    [
        ("stack", {"infra", "local_platform", "handlers", "policy", "pulumi", "boto3", "botocore"}),
        ("infra", {"local_platform"}),
        ("local_platform", {"infra", "policy", "pulumi", "pulumi_aws"}),
        ("handlers", {"infra", "local_platform", "policy", "pulumi"}),
        ("taskcore", {"stack", "handlers", "infra", "local_platform", "policy"}),
        ("bench", {"tests"}),
    ],
)
def test_who_may_import_whom(part: str, forbidden: set[str]) -> None:
    found = {
        f"{module} imports {name}"
        for module, names in part_imports(part).items()
        for name in names
        if name.split(".")[0] in forbidden
    }
    assert found == set()


def test_infra_modules_import_each_other_without_a_cycle() -> None:
    graph = {
        module: {
            name
            for name in names
            if name.startswith("infra.") and name in part_imports("infra") and name != module
        }
        for module, names in part_imports("infra").items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting, module])
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_parts_are_the_folders() -> None:
    assert all((ROOT / part / "__init__.py").is_file() for part in PARTS)


def test_tests_lean_on_helper_modules_not_on_each_other() -> None:
    """A test module imports helpers (plain modules) and fixtures (through pytest), never
    another test module or a conftest."""
    found = {
        f"{module} imports {name}"
        for module, names in part_imports("tests").items()
        for name in names
        if name.startswith("tests.")
        and any(p.startswith("test_") or p == "conftest" for p in name.split(".")[1:])
    }
    assert found == set()
