"""Crashes, partial AWS failures, overlapping pollers: nothing lost, nothing stuck, no duplicate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from jobpoller.services import PollerServices
from testbed.aws import MotoEndpoint
from testbed.local_runtime import new_session_id
from testbed.poller import PollerRig, poller_rig, wait_agent_status
from tests.support.still_running import STILL_RUNNING_SECONDS

LEASE_S = 1.0
LIVE_LEASE_S = 30.0
"""A lease no pass outlasts here (two AgentCore calls at the rig's 10 s read timeout)."""


class Killed(BaseException):
    """The poller's process died at this call: nothing after it reaches AWS."""


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    # Module-wide: each test uses its own sessions and jobs and asserts only on those.
    with poller_rig(moto, moto.create_resources(), lease_s=LEASE_S) as running:
        yield running


def _finished_job(rig: PollerRig) -> tuple[str, str]:
    session_id = new_session_id()
    job_id = rig.submit(session_id, kind="synthetic", input={"seconds": 0.1, "result_bytes": 10})
    wait_agent_status(rig, session_id, job_id, "SUCCEEDED")
    return session_id, job_id


def _notifications(rig: PollerRig, job_id: str, inbox: list[dict[str, Any]]) -> list[str]:
    return [m["document"]["status"] for m in inbox if m["document"]["job_id"] == job_id]


def _concerns(job_id: str, session_id: str, params: dict[str, Any]) -> bool:
    key = params.get("Key", {}).get("job_id", {}).get("S")
    return (
        key == job_id
        or params.get("runtimeSessionId") == session_id
        or job_id in str(params.get("Message", ""))
    )


# Each step of a job's collection, as the AWS call that begins it.
STEPS: dict[str, tuple[str, str | None]] = {
    "poll": ("bedrock-agentcore.InvokeAgentRuntime", None),
    "finish": ("dynamodb.UpdateItem", "finished_at = :finished"),
    "publish": ("sns.Publish", None),
    "record-notified": ("dynamodb.UpdateItem", "notified_at = if_not_exists"),
    "stop-session": ("bedrock-agentcore.StopRuntimeSession", None),
    "close": ("dynamodb.UpdateItem", "session_stopped_at"),
}

# The steps around the notification run in every `make test`; the rest with the slow tests.
FAST_STEPS = {"publish", "record-notified", "stop-session"}


def kill_before(step: str, job_id: str, session_id: str) -> Callable[..., None]:
    """A hook that kills the poller just before `step` of this job."""
    operation, marker = STEPS[step]
    dead = False

    def hook(services: PollerServices, clients: dict[str, Any]) -> None:
        def on_call(params: dict[str, Any], event_name: str, **_: Any) -> None:
            nonlocal dead
            hit = event_name.endswith(operation) and _concerns(job_id, session_id, params)
            if hit and marker is not None:
                hit = marker in str(params.get("UpdateExpression", ""))
            if dead or hit:
                dead = True
                raise Killed(step)

        for client in clients.values():
            client.meta.events.register("before-parameter-build", on_call)

    return hook


@pytest.mark.parametrize(
    "step",
    [pytest.param(step, marks=[] if step in FAST_STEPS else [pytest.mark.slow]) for step in STEPS],
)
def test_poller_killed_before_each_step_then_run_again_loses_nothing(
    rig: PollerRig, step: str
) -> None:
    session_id, job_id = _finished_job(rig)
    with pytest.raises(Killed):
        rig.tick(rig.services(kill_before(step, job_id, session_id)))
    time.sleep(LEASE_S)  # a killed poller's lease runs out
    rig.tick_until_done([job_id])
    record = rig.record(job_id)
    assert record["status"] == {"S": "SUCCEEDED"} and "attention" not in record
    assert rig.sessions()[session_id]["state"] == "Stopped"
    sent = _notifications(rig, job_id, rig.inbox())
    # The one documented duplicate: published, then killed before recording it.
    assert sent == ["SUCCEEDED"] * (2 if step == "record-notified" else 1)


def test_publish_failure_is_published_again_on_the_next_tick(rig: PollerRig) -> None:
    _, job_id = _finished_job(rig)
    failures = 0

    def refuse_publish(services: PollerServices, clients: dict[str, Any]) -> None:
        def on_publish(params: dict[str, Any], **_: Any) -> None:
            nonlocal failures
            failures += 1
            raise EndpointConnectionError(endpoint_url="https://sns.example")

        clients["sns"].meta.events.register("before-parameter-build.sns.Publish", on_publish)

    report = rig.tick(rig.services(refuse_publish))
    assert failures >= 1 and report.steps[job_id] == "retry"
    record = rig.record(job_id)
    assert record["status"] == {"S": "SUCCEEDED"} and "notified_at" not in record
    assert "lease_holder" not in record  # released, so the retry need not wait
    assert rig.tick().steps[job_id] == "closed"
    assert _notifications(rig, job_id, rig.inbox()) == ["SUCCEEDED"]


def test_two_pollers_at_once_notify_each_job_once(rig: PollerRig) -> None:
    # With a lease that outlasts a pass, as POLLER_LEASE_S must: the module's 1 s lease (for
    # the crash tests) ran out mid-pass on a loaded machine, and the second poller then
    # published a job again, the duplicate that settings.py documents for such a lease.
    rig = replace(rig, settings=replace(rig.settings, lease_s=LIVE_LEASE_S))
    shared_session = new_session_id()
    jobs = [rig.submit(shared_session, kind="synthetic", input={"seconds": 0.1}) for _ in range(4)]
    singles = [_finished_job(rig) for _ in range(2)]
    jobs += [job_id for _, job_id in singles]
    for job_id in jobs[:4]:
        wait_agent_status(rig, shared_session, job_id, "SUCCEEDED")
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(3):
            list(pool.map(lambda _: rig.tick(), range(2)))
    rig.tick_until_done(jobs)
    inbox = rig.inbox()
    for job_id in jobs:
        assert _notifications(rig, job_id, inbox) == ["SUCCEEDED"], job_id
    sessions = rig.sessions()
    for session_id in [shared_session, *(s for s, _ in singles)]:
        assert sessions[session_id]["state"] == "Stopped"


def test_shared_session_is_stopped_only_after_its_last_job(rig: PollerRig) -> None:
    for seconds in STILL_RUNNING_SECONDS:
        session_id = new_session_id()
        quick = rig.submit(session_id, kind="synthetic", input={"seconds": 0.1})
        slow = rig.submit(session_id, kind="synthetic", input={"seconds": seconds})
        wait_agent_status(rig, session_id, quick, "SUCCEEDED")
        report = rig.tick()
        if rig.status(slow) == "RUNNING":
            break
        # Ended before the tick on a loaded machine: a lost race, so try a longer job.
        assert rig.status(slow) == "SUCCEEDED", rig.record(slow)
        rig.tick_until_done([quick, slow])
    else:
        raise AssertionError(f"no job of {STILL_RUNNING_SECONDS} s was still running at a tick")
    assert report.steps[quick] == "awaiting-session" and report.steps[slow] == "running"
    assert rig.sessions()[session_id]["state"] != "Stopped"
    rig.tick_until_done([quick, slow])
    assert rig.status(slow) == "SUCCEEDED"
    assert rig.sessions()[session_id]["state"] == "Stopped"
    inbox = rig.inbox()
    assert _notifications(rig, quick, inbox) == _notifications(rig, slow, inbox) == ["SUCCEEDED"]
