"""Hypothesis over hostile submits through the local runtime and the real agent, each followed
downstream through the poller: refused with a clear error, or recorded, ended, off the
attention index and notified exactly once, its stored text within its bounds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import example, given
from hypothesis import strategies as st

from agentjobs import limits
from agentjobs.protocol import ErrorCode
from jobpoller.services import PollerServices
from testbed.aws import MotoEndpoint
from testbed.local_runtime import RUNTIME_ARN, new_session_id
from testbed.poller import PollerRig, poller_rig
from tests.support.fuzzing import PROCESS_EXAMPLES, fuzz_settings, soak
from tests.support.hostile_text import hostile_text, raw_json, text_near

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "LOST"}

synthetic_inputs = st.fixed_dictionaries(
    {"seconds": st.sampled_from([0, 0.05, 0.2])},
    optional={"fail": hostile_text, "result_bytes": st.sampled_from([0, 10, 300_000])},
)
csv_uris = st.builds(
    lambda key: f"s3://results/inputs/{key}", text_near("s3_uri")
) | st.sampled_from(["s3://results/inputs/" + "k" * n for n in (200_000, 300_000)])
report_inputs = st.fixed_dictionaries({"csv_uri": csv_uris}) | st.fixed_dictionaries(
    {"csv": st.sampled_from(["a,b\n1,2\n", "x\n\ud800\n"]) | hostile_text},
    optional={"title": hostile_text},
)
submits = st.fixed_dictionaries(
    {"action": st.just("submit")},
    optional={"client_token": text_near("client_token")},
).flatmap(
    lambda base: (
        st.fixed_dictionaries({"kind": st.just("synthetic"), "input": synthetic_inputs})
        | st.fixed_dictionaries({"kind": st.just("data_report"), "input": report_inputs})
    ).map(lambda job: {**base, **job})
) | st.fixed_dictionaries({"prompt": hostile_text})


class Downstream:
    """The rig, one poller's clients kept between ticks (as a warm Lambda keeps them), and
    the session the next submit goes to."""

    def __init__(self, rig: PollerRig) -> None:
        self.rig = rig
        self.services: PollerServices = rig.services()
        self.client = rig.runtime.client()
        self.session_id = new_session_id()

    def spent(self) -> None:
        """The session now holds a job, which the poller stops at its end: the next submit
        goes to a fresh session. A refused submit starts nothing and keeps the session, so
        the refusals after it also check that a refusal leaves the agent as it was."""
        self.session_id = new_session_id()


@pytest.fixture(scope="module")
def downstream(moto: MotoEndpoint) -> Iterator[Downstream]:
    with poller_rig(moto, moto.create_resources(), max_poll_failures=2) as running:
        yield Downstream(running)


def _send(downstream: Downstream, body: bytes) -> dict[str, Any]:
    try:
        answer = downstream.client.invoke_agent_runtime(
            agentRuntimeArn=RUNTIME_ARN, runtimeSessionId=downstream.session_id, payload=body
        )
    except ClientError as exc:  # RuntimeClientError: the agent failed the request (a 5xx)
        raise AssertionError(f"the agent failed the request: {exc.response['Error']}") from exc
    decoded = json.loads(answer["response"].read())
    assert isinstance(decoded, dict), decoded
    return decoded


def _stored_text_within_bounds(record: dict[str, Any]) -> None:
    error = record.get("error", {}).get("M", {})
    message = error.get("message", {}).get("S", "")
    assert len(message) <= limits.MAX_ERROR_MESSAGE_CHARS, len(message)
    progress = record.get("progress", {}).get("M", {}).get("message", {}).get("S", "")
    assert len(progress) <= limits.MAX_PROGRESS_MESSAGE_CHARS, len(progress)


def _check(downstream: Downstream, payload: dict[str, Any]) -> None:
    rig = downstream.rig
    answer = _send(downstream, raw_json(payload))
    if "error" in answer and "status" not in answer:
        error = answer["error"]
        assert error.get("code") not in (None, ErrorCode.INTERNAL_ERROR), answer
        assert isinstance(error.get("message"), str) and error["message"], answer
        return
    downstream.spent()
    assert answer.get("status") == "RUNNING", answer
    job_id = str(answer["job_id"])
    deadline = time.monotonic() + 90
    while job_id in rig.in_flight():
        # Cut: a poison record's own text may run to hundreds of kilobytes.
        assert time.monotonic() < deadline, f"never left the attention index: {rig.record(job_id)}"[
            :800
        ]
        rig.tick(downstream.services)
        time.sleep(0.1)
    record = rig.record(job_id)
    assert record["status"]["S"] in TERMINAL, str(record)[:800]
    assert "notified_at" in record and "attention" not in record, str(record)[:800]
    _stored_text_within_bounds(record)
    mine = [m for m in rig.inbox() if m["document"].get("job_id") == job_id]
    assert len(mine) == 1, mine
    assert mine[0]["document"]["status"] == record["status"]["S"]


# Each accepted submit is a fresh agent process followed through the poller: `make test`
# runs the pinned cases and a few drawn ones, the slow run a soak of many more.
@fuzz_settings(PROCESS_EXAMPLES)
@given(payload=submits)
@example(
    payload={
        "action": "submit",
        "kind": "data_report",
        "input": {"csv_uri": "s3://results/inputs/" + "k" * 200_000},
    }
)
@example(
    payload={
        "action": "submit",
        "kind": "data_report",
        "input": {"csv_uri": "s3://results/inputs/" + "k" * 300_000},
    }
)
@example(
    payload={"action": "submit", "kind": "synthetic", "input": {"seconds": 0, "fail": "bad \ud800"}}
)
@example(
    payload={
        "action": "submit",
        "kind": "synthetic",
        "input": {"seconds": 0},
        "client_token": "\ud800",
    }
)
@example(payload={"prompt": "\udfff"})
# And one of each way an accepted submit goes downstream, so that every `make test` follows
# them all whatever is drawn: a failure whose message is at its bound in characters (four
# times that in bytes), a result big enough for S3, and a report in its own process.
@example(
    payload={
        "action": "submit",
        "kind": "synthetic",
        "input": {"seconds": 0.05, "fail": "\U0001f600" * limits.MAX_ERROR_MESSAGE_CHARS},
    }
)
@example(
    payload={
        "action": "submit",
        "kind": "synthetic",
        "input": {"seconds": 0, "result_bytes": 300_000},
        "client_token": "t" * limits.MAX_CLIENT_TOKEN_CHARS,
    }
)
@example(
    payload={
        "action": "submit",
        "kind": "data_report",
        "input": {"csv": "a,b\n1,2\n", "title": "[/bold]\x1b" * 25},
    }
)
def test_hostile_submits_are_refused_or_end_recorded_and_notified_once(
    downstream: Downstream, payload: dict[str, Any]
) -> None:
    _check(downstream, payload)


@soak(60)
@given(payload=submits)
def test_many_hostile_submits_are_refused_or_end_recorded_and_notified_once(
    downstream: Downstream, payload: dict[str, Any]
) -> None:
    _check(downstream, payload)
