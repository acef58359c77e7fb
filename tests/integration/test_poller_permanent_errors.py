"""Refusals that no retry cures end a job; throttling and 5xx are retried as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from jobpoller.services import PollerServices
from testbed.aws import MotoEndpoint
from testbed.poller import PollerRig, poller_rig
from tests.support.refusals import (
    OVERSIZED_AGENT_CMD,
    Refusals,
    finish_error_code,
    is_finish,
    running_job,
)
from tests.support.wire import dynamodb_error, sns_error

TOO_LARGE = "Item size has exceeded the maximum allowed size"
SHORTENED = "the error message is in the job's record"


@pytest.fixture(scope="module")
def rig(moto: MotoEndpoint) -> Iterator[PollerRig]:
    # Module-wide: each test uses its own sessions and jobs and asserts only on those.
    with poller_rig(moto, moto.create_resources(), agent_cmd=OVERSIZED_AGENT_CMD) as running:
        yield running


def _hooked(rig: PollerRig, event: str, refusals: Refusals) -> PollerServices:
    service = event.split(".")[1]

    def hook(_: PollerServices, clients: dict[str, Any]) -> None:
        clients[service].meta.events.register(event, refusals.before_send)

    return rig.services(hook)


def _of_job(
    job_id: str, test: Callable[[dict[str, Any]], bool]
) -> Callable[[dict[str, Any]], bool]:
    """Only calls about this job (other tests' jobs may share the table and topic)."""

    def choose(call: dict[str, Any]) -> bool:
        return _about(call) == job_id and test(call)

    return choose


def _about(call: dict[str, Any]) -> str | None:
    if "Key" in call:
        return str(call["Key"]["job_id"]["S"])
    for name, value in call.items():  # SNS query form: MessageAttributes.entry.N.Name
        if name.endswith(".Name") and value == "job_id":
            return call.get(name.removesuffix(".Name") + ".Value.StringValue")
    return None


def _ticks_until_done(
    rig: PollerRig, job_id: str, services: PollerServices, ticks: int = 3
) -> None:
    for _ in range(ticks):
        rig.tick(services)
        if job_id not in rig.in_flight():
            return
    raise AssertionError(f"still in flight after {ticks} ticks: {rig.record(job_id)}")


def _notifications(rig: PollerRig, job_id: str) -> list[dict[str, Any]]:
    return [m["document"] for m in rig.inbox() if m["document"]["job_id"] == job_id]


def test_refused_outcome_ends_the_job_failed_with_record_refused(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeerror")
    refusals = Refusals(
        _of_job(job_id, lambda call: is_finish(call) and finish_error_code(call) == "JOB_FAILED"),
        lambda url: dynamodb_error(url, "ValidationException", TOO_LARGE),
    )
    services = _hooked(rig, "before-send.dynamodb.UpdateItem", refusals)
    _ticks_until_done(rig, job_id, services)
    record = rig.record(job_id)
    assert record["status"] == {"S": "FAILED"}
    assert record["error"]["M"]["code"] == {"S": "RECORD_REFUSED"}
    assert "session_stopped_at" in record and "notified_at" in record
    assert len(refusals.refused) == 1, "a refused outcome is not sent again"
    [document] = _notifications(rig, job_id)
    assert document["status"] == "FAILED" and document["error"]["code"] == "RECORD_REFUSED"


def test_refused_progress_ends_the_running_job_and_asks_the_agent_to_stop(rig: PollerRig) -> None:
    job_id = running_job(rig, "running")
    refusals = Refusals(
        _of_job(job_id, lambda call: "progress = :p, last_seen_at" in call["UpdateExpression"]),
        lambda url: dynamodb_error(url, "ValidationException", "One or more parameter values"),
    )
    services = _hooked(rig, "before-send.dynamodb.UpdateItem", refusals)
    report = rig.tick(services)
    assert report.counts["RecordsRefused"] == 1
    record = rig.record(job_id)
    assert record["status"] == {"S": "FAILED"}
    assert record["error"]["M"]["code"] == {"S": "RECORD_REFUSED"}
    assert job_id not in rig.in_flight()
    assert [d["status"] for d in _notifications(rig, job_id)] == ["FAILED"]


def test_throttled_outcome_is_retried_and_keeps_the_agents_error(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeerror")
    refusals = Refusals(
        _of_job(job_id, is_finish),
        lambda url: dynamodb_error(url, "ProvisionedThroughputExceededException", "slow down"),
    )
    services = _hooked(rig, "before-send.dynamodb.UpdateItem", refusals)
    report = rig.tick(services)
    assert report.steps[job_id] == "retry" and rig.status(job_id) == "RUNNING"
    assert _notifications(rig, job_id) == []
    rig.tick_until_done([job_id])
    assert rig.record(job_id)["error"]["M"]["code"] == {"S": "JOB_FAILED"}
    assert len(_notifications(rig, job_id)) == 1


def _sns_refusal(url: str) -> AWSResponse:
    return sns_error(url, "InvalidParameter", "Invalid parameter: Message too long")


def test_refused_notification_is_published_again_without_the_jobs_text(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeerror")
    refusals = Refusals(
        _of_job(job_id, lambda call: SHORTENED not in call["Message"]),
        _sns_refusal,
    )
    services = _hooked(rig, "before-send.sns.Publish", refusals)
    _ticks_until_done(rig, job_id, services)
    assert len(refusals.refused) == 1
    [document] = _notifications(rig, job_id)
    assert document["error"] == {"code": "JOB_FAILED", "message": SHORTENED}
    record = rig.record(job_id)
    assert record["error"]["M"]["code"] == {"S": "JOB_FAILED"} and "notified_at" in record


def test_notification_refused_in_every_form_closes_the_job_unnotified(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeerror")
    refusals = Refusals(_of_job(job_id, lambda _: True), _sns_refusal)
    services = _hooked(rig, "before-send.sns.Publish", refusals)
    report = rig.tick(services)
    assert report.counts["NotificationsRefused"] == 1
    assert job_id not in rig.in_flight()
    record = rig.record(job_id)
    assert record["status"] == {"S": "FAILED"}, "the job's own outcome is kept"
    assert record["error"]["M"]["code"] == {"S": "JOB_FAILED"}
    assert record["notify_error"]["M"]["code"] == {"S": "NOTIFY_REFUSED"}
    assert "notified_at" not in record and "session_stopped_at" in record
    rig.tick(services)
    assert len(refusals.refused) == 2, "the full and the shortened form, once each"
    assert _notifications(rig, job_id) == []


def test_unavailable_sns_is_retried_until_it_takes_the_notification(rig: PollerRig) -> None:
    job_id = running_job(rig, "hugeerror")
    refused_once: list[bool] = []

    def first_only(_: dict[str, Any]) -> bool:
        if refused_once:
            return False
        refused_once.append(True)
        return True

    refusals = Refusals(
        _of_job(job_id, first_only), lambda url: sns_error(url, "InternalError", "oops", 500)
    )
    services = _hooked(rig, "before-send.sns.Publish", refusals)
    report = rig.tick(services)
    assert report.steps[job_id] == "retry" and job_id in rig.in_flight()
    rig.tick_until_done([job_id], services=services)
    [document] = _notifications(rig, job_id)
    assert document["error"]["code"] == "JOB_FAILED"
    assert len(document["error"]["message"]) <= 2000
    assert "notify_error" not in rig.record(job_id)
