"""The wire protocol's two modules import in either order and share one set of parsers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentjobs import protocol, protocol_parsing


@pytest.mark.parametrize("first", ["agentjobs.protocol_parsing", "agentjobs.protocol"])
def test_either_module_can_be_imported_first_in_a_fresh_interpreter(first: str) -> None:
    code = f"import {first}; from agentjobs.protocol import parse_request; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_protocol_re_exports_the_parsers_themselves() -> None:
    assert protocol.parse_request is protocol_parsing.parse_request
    assert protocol.parse_caller is protocol_parsing.parse_caller
    assert protocol.parse_s3_uri is protocol_parsing.parse_s3_uri
