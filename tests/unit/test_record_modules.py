"""The job record's two modules import in either order and share one item encoding."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentjobs import record, record_items


@pytest.mark.parametrize("first", ["agentjobs.record_items", "agentjobs.record"])
def test_either_module_can_be_imported_first_in_a_fresh_interpreter(first: str) -> None:
    code = (
        f"import {first}; from agentjobs.record import JobRecord, read_item, to_item; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_record_re_exports_the_item_encoding_itself() -> None:
    assert record.to_item is record_items.to_item
    assert record.from_item is record_items.from_item
    assert record.read_item is record_items.read_item
    assert record.MalformedRecord is record_items.MalformedRecord
    assert record.StoredJob is record_items.StoredJob
