"""The chaos suite: jobs and hostile requests through the local stack under every fault kind;
every fault kind fires and every invariant holds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from testbed.aws import MotoEndpoint
from tests.chaos.harness import SHORT_FORM, ChaosConfig, run_chaos


def _run(moto: MotoEndpoint, tmp_path: Path, base: ChaosConfig, **knobs: object) -> None:
    config = replace(base, log_dir=tmp_path, **knobs)  # type: ignore[arg-type]
    report = run_chaos(config, moto)
    print(report.text())
    # ok covers every invariant, the harness's own (enough submits accepted or refused as
    # expected, a resume after a loss and a handoff made) and that every enabled fault kind
    # fired; the counts per kind are printed.
    assert report.ok, report.text()


@pytest.mark.timeout(600)
def test_jobs_survive_every_fault_kind_short_form(moto: MotoEndpoint, tmp_path: Path) -> None:
    _run(moto, tmp_path, SHORT_FORM)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_jobs_survive_every_fault_kind_full_form(moto: MotoEndpoint, tmp_path: Path) -> None:
    _run(moto, tmp_path, ChaosConfig(), jobs=300, session_workers=6, pollers=3, seed=2026)
