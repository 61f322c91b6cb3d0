"""The layout's rules that ruff and the import contracts do not check (docs/architecture.md):
sizes of modules and functions, SQL kept in ``queries`` modules, what stands at the top of
``service/`` and ``campaigns/``, and tests that mirror the packages."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import ROOT

PACKAGES = ("service", "campaigns", "webhooks")
MAX_MODULE_LINES = 400
LONG_FUNCTION = 60
MAX_LONG_FUNCTIONS = 5
MAX_SQL_OUTSIDE = 0.10
COMPOSITION = {
    "__init__.py",
    "__main__.py",
    "app.py",
    "serve.py",
    "settings.py",
    "keys.py",
    "scheduler.py",
    "observability.py",
}
SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|TRUNCATE|ALTER|DROP|LOCK|LISTEN|NOTIFY|COPY)\s+\S"
)


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def sql_statements(tree: ast.AST) -> int:
    """String literals and f-strings that begin with an SQL verb (an f-string once, not also
    its literal parts)."""
    parts = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for value in node.values
    }
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            text = first.value if isinstance(first, ast.Constant) else None
        elif isinstance(node, ast.Constant) and id(node) not in parts:
            text = node.value
        else:
            continue
        if isinstance(text, str) and SQL.match(text):
            count += 1
    return count


def test_sql_counter_counts_statements_once() -> None:
    tree = ast.parse(
        'a = "SELECT 1"\nb = f"DELETE FROM {t}"\nc = "not sql"\nd = "INSERT x"\ne = "DELETE"'
    )
    assert sql_statements(tree) == 3  # a method's name alone is no statement


def test_no_module_is_over_400_lines() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in modules()
        if (n := p.read_text("utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert big == {}, "split these modules by role"


def test_few_functions_are_long() -> None:
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > LONG_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert len(long) <= MAX_LONG_FUNCTIONS, long


def test_sql_lives_in_queries_modules() -> None:
    inside = 0
    outside: dict[str, int] = {}
    for path in modules():
        n = sql_statements(ast.parse(path.read_text("utf-8")))
        if path.stem.endswith("queries"):
            inside += n
        elif n:
            outside[str(path.relative_to(ROOT))] = n
    total = inside + sum(outside.values())
    assert total > 100  # the counter still finds the statements
    assert sum(outside.values()) <= MAX_SQL_OUTSIDE * total, outside


def test_webhooks_hold_no_sql() -> None:
    found = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / "webhooks").rglob("*.py"))
        if (n := sql_statements(ast.parse(p.read_text("utf-8"))))
    }
    assert found == {}, "webhooks verify, parse and normalise; the core stores"


def test_service_top_is_composition_only() -> None:
    top = {p.name for p in (ROOT / "service").glob("*.py")}
    assert top <= COMPOSITION, f"move {sorted(top - COMPOSITION)} into a package of service/"


def test_campaigns_top_keeps_at_most_ten_modules() -> None:
    top = sorted(p.name for p in (ROOT / "campaigns").glob("*.py"))
    assert len(top) <= 10, top


def test_tests_mirror_the_packages() -> None:
    """Each folder of tests/ but support, data and system names a package folder."""
    tests = ROOT / "tests"
    strays = []
    for folder in sorted(p for p in tests.rglob("*") if p.is_dir()):
        rel = folder.relative_to(tests)
        if rel.parts[0] in ("support", "data", "system") or "__pycache__" in rel.parts:
            continue
        if not (ROOT / rel / "__init__.py").exists():
            strays.append(str(rel))
    assert strays == [], "tests/<package path>/ must mirror a package"
    assert not list(tests.glob("test_*.py"))[1:], "only the layout's own test stands at the top"
