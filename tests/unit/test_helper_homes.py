"""Benchmarks and tests share helpers from testbed/: neither bench/ nor testbed/ imports tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.imports import imports_of

REPO = Path(__file__).resolve().parents[2]


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    plain, dotted, other = (tmp_path / f"{name}.py" for name in ("plain", "dotted", "other"))
    plain.write_text("import tests.support.cli\n")
    dotted.write_text("from tests.support import poller\n")
    other.write_text("import testbed\nfrom . import tests\n")
    assert imports_of([plain, dotted, other])["tests"] == {str(plain), str(dotted)}


@pytest.mark.parametrize("folder", ["bench", "testbed"])
def test_shared_helpers_import_nothing_from_tests(folder: str) -> None:
    offenders = imports_of(sorted((REPO / folder).rglob("*.py"))).get("tests", set())
    assert offenders == set(), (
        f"move the helpers these import from tests into testbed/: {offenders}"
    )
