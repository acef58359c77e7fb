"""Benchmarks and tests share helpers from testbed/: neither bench/ nor testbed/ imports tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imports_of_tests(source: str) -> list[str]:
    """The modules of the `tests` package that this source imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name == "tests" or name.startswith("tests.")]
    return found


def test_the_check_sees_every_form_of_import() -> None:
    source = "import tests.support.cli\nfrom tests.support import poller\nfrom testbed import aws\n"
    assert imports_of_tests(source) == ["tests.support.cli", "tests.support"]


@pytest.mark.parametrize("folder", ["bench", "testbed"])
def test_shared_helpers_import_nothing_from_tests(folder: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): names
        for path in sorted((REPO / folder).rglob("*.py"))
        if (names := imports_of_tests(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"move these helpers into testbed/: {offenders}"
