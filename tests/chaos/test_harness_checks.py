"""The chaos harness's own checks: a failure inside it fails the run, it sees what it claims,
and it sends each hostile request once."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from agentjobs.store import StoreError
from testbed.aws import MotoEndpoint
from tests.chaos.harness import (
    FAULT_KINDS,
    HOSTILE,
    SHORT_FORM,
    ChaosConfig,
    InjectedError,
    World,
    hostile_payload,
    poller_log_problems,
    poller_logs_to,
    unfired_faults,
)


def test_an_assertion_failing_inside_a_running_world_fails_the_run(
    moto: MotoEndpoint, tmp_path: Path
) -> None:
    world = World("accept", "accept", 1, replace(ChaosConfig(), log_dir=tmp_path), moto)
    with pytest.raises(AssertionError, match="harness check"), world.running():
        raise AssertionError("harness check")
    assert world.figures.violations == []


def test_an_enabled_fault_kind_that_never_fired_is_a_violation() -> None:
    config = replace(ChaosConfig(), faults=frozenset({"sns_fail", "s3_fail", "busy_reject"}))
    found = unfired_faults(config, Counter({"sns_fail:5xx": 2, "dynamodb_fail:throttle": 1}))
    assert found == ["s3_fail is on but fired 0 times", "busy_reject is on but fired 0 times"]


def test_every_fault_kind_counted_means_none_unfired() -> None:
    config = ChaosConfig()
    assert unfired_faults(config, Counter({f"{kind}:x": 1 for kind in FAULT_KINDS})) == []


def test_the_poller_log_shows_a_per_job_exception_that_was_not_injected(tmp_path: Path) -> None:
    # The poller's own Logger, in its Lambda JSON format: reconcile catches per-job
    # exceptions and logs them, so a pass that "raised nothing" may still have hidden one.
    path = tmp_path / "poller.log"
    with poller_logs_to(path):
        logger = logging.getLogger("poller")
        for exc in (InjectedError("injected"), StoreError("throttled"), KeyError("status")):
            try:
                raise exc
            except Exception:
                logger.exception("reconciling the job failed", extra={"job_id": "j-1"})
        logger.warning("a step failed; the next tick resumes it", extra={"job_id": "j-2"})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line.get("exception_name") for line in lines] == [
        "InjectedError",
        "StoreError",
        "KeyError",
        None,
    ]
    assert poller_log_problems(path) == ["reconciling the job failed (j-1): KeyError"]


def test_hostile_requests_reach_the_wire_as_meant() -> None:
    surrogate = hostile_payload("fail-surrogate", "bucket")
    assert b"\\ud800" in json.dumps(surrogate).encode()
    uri = hostile_payload("csv-uri-300k", "results-bucket")["input"]["csv_uri"]
    assert uri.startswith("s3://results-bucket/inputs/") and len(uri) > 300_000
    assert hostile_payload("prompt-surrogate", "b") == HOSTILE["prompt-surrogate"]
    assert hostile_payload("error-200k", "b")["action"] == "submit"


def _taken(world: World) -> list[tuple[int, list[str]]]:
    """What successive take_job calls claim: (place, hostile variants), until none is left."""
    taken: list[tuple[int, list[str]]] = []
    for place in range(100):
        ok, variants = world.take_job()
        if not ok:
            return taken
        taken.append((place, variants))
    raise AssertionError("take_job never ran out")


def test_every_hostile_request_is_taken_once_alone_or_grouped(
    moto: MotoEndpoint, tmp_path: Path
) -> None:
    variants = sorted(HOSTILE)[::2]
    alone = World("accept", "accept", 20, replace(ChaosConfig(), log_dir=tmp_path), moto, variants)
    claims = _taken(alone)
    # One place each, spread evenly over the world's jobs (20 places, 4 of them hostile).
    assert [c for c in claims if c[1]] == [
        (4, [variants[0]]),
        (8, [variants[1]]),
        (12, [variants[2]]),
        (16, [variants[3]]),
    ]
    assert len(claims) == 20
    config = replace(SHORT_FORM, log_dir=tmp_path)
    grouped = World("reject", "reject", 10, config, moto, variants)
    claims = _taken(grouped)
    # One claim for the whole group (one session's), which takes its four places.
    assert [c[1] for c in claims if c[1]] == [variants]
    assert len(claims) == 10 - len(variants) + 1
