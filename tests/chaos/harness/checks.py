"""The invariants a chaos run checks against the table, the bucket, the inbox and the logs."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from agentjobs import schema
from agentjobs.notifier import NotifyError
from agentjobs.protocol import encode_json, parse_s3_uri
from agentjobs.store import StoreError
from jobpoller.agentcore import StopSessionError
from testbed.inbox import drain_inbox
from tests.chaos.harness.durable import DURABLE_INVARIANTS, check_durable, check_resumed_result
from tests.chaos.harness.faults import InjectedError
from tests.chaos.harness.plan import FAULT_KINDS, STOP_REASONS, TERMINAL, ChaosConfig
from tests.chaos.harness.world import World, world_sessions


def inbox(world: World) -> dict[str, list[dict[str, Any]]]:
    """Every notification the inbox queue received, by job id (the `default` JSON)."""
    assert world.resources is not None
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in drain_inbox(world.aws("sqs"), world.resources.inbox_queue_url):
        document = message["document"]
        found[str(document.get("job_id"))].append(document)
    return found


def check_world(world: World, items: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Every invariant against the table, the bucket and the inbox; problems by invariant."""
    assert world.resources is not None
    problems: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    s3 = world.aws("s3")
    bucket = world.resources.bucket

    def read(key: str) -> bytes | None:
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return None
        return body

    messages = inbox(world)
    sessions = world_sessions(world)
    for job_id in world.plans:
        if job_id not in items:
            problems["terminal"].append(f"{job_id}: accepted but not in the table")
    for job_id, item in items.items():
        status = item.get("status", {}).get("S")
        world.figures.jobs_by_status[str(status)] += 1
        if status not in TERMINAL or schema.ATTENTION_KEY in item:
            problems["terminal"].append(f"{job_id}: {status}, attention={'attention' in item}")
            continue
        _check_outcome(world, job_id, item, read, problems["outcome"])
        plan = world.plans.get(job_id)
        resumes = plan is not None and (plan.max_attempts > 1 or plan.outliving)
        if plan is not None and resumes and status == "SUCCEEDED":
            problems["durable-ended"] += check_resumed_result(world, plan, item)
        _check_notified(world, job_id, item, messages.get(job_id, []), problems["notified"])
        _check_window(world, job_id, problems["duplicates"])
        finishes = [e for e in world.events.get(job_id, []) if e[1] == "finish-ok"]
        if len(finishes) > 1:
            problems["no-regression"].append(
                f"{job_id}: moved out of RUNNING {len(finishes)} times"
            )
        session_id = item.get("session_id", {}).get("S")
        if session_id and sessions.get(session_id, "Stopped") != "Stopped":
            problems["sessions-stopped"].append(f"{session_id}: {sessions[session_id]}")
    for job_id in messages:
        if job_id not in items:
            problems["notified"].append(f"notification for unknown job {job_id}")
    for name, found in check_durable(world, items, sessions).items():
        problems[name] += found
    return problems


INVARIANTS = {
    "terminal": "every job terminal and off the attention index, within the tick bound",
    "outcome": "a stored outcome decides the status; SUCCEEDED results byte-identical",
    "notified": "every terminal job notified, with its job_id and final status",
    "duplicates": "duplicates only from the publish / notified_at window",
    "no-regression": "no record leaves a terminal status; one transition out of RUNNING",
    "sessions-stopped": "every job's session stopped once the job is collected",
    "no-survivors": "no agent process outlives its runtime",
    "poller-errors": "no poller pass or job raised anything but injected or AWS failures",
    "answers": "no INTERNAL_ERROR answer, no 5xx; hostile requests refused clearly or run",
    "faults-fired": "every enabled fault kind fired at least once",
    "harness": "the harness itself ran as planned (threads, submits, its own checks)",
    **DURABLE_INVARIANTS,
}

# What the poller may log with an exception and still be healthy: an injected bug, or an
# AWS failure its adapters translated. Anything else (KeyError, a raw ClientError, ...)
# is a per-job exception that reconcile caught, logged and would otherwise hide.
_EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    InjectedError,
    StoreError,
    NotifyError,
    StopSessionError,
)


def _names(classes: tuple[type[BaseException], ...]) -> set[str]:
    found: set[str] = set()
    pending = list(classes)
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending += cls.__subclasses__()
    return found


def poller_log_problems(path: Path) -> list[str]:
    """Exceptions in the poller's JSON log that were neither injected nor AWS failures."""
    if not path.exists():
        return [f"no poller log at {path.name}"]
    expected = _names(_EXPECTED_ERRORS)
    found: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        name = record.get("exception_name")
        if (name is not None and name not in expected) or record.get("level") == "CRITICAL":
            where = record.get("job_id") or record.get("session_id") or "?"
            found.append(f"{record.get('message')} ({where}): {name}")
    return found


# What the agent logs when it answers INTERNAL_ERROR (its edge caught an exception).
_AGENT_INTERNAL_ERROR = "request failed in session"


def agent_log_problems(log_dir: Path) -> list[str]:
    """Requests an agent answered with INTERNAL_ERROR, from every session's log."""
    found: list[str] = []
    for log in sorted(log_dir.glob("*")):
        if not log.is_file():
            continue
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if _AGENT_INTERNAL_ERROR in line:
                found.append(f"{log.name}: {line.strip()[:200]}")
    return found


def unfired_faults(config: ChaosConfig, faults: Counter[str]) -> list[str]:
    """Enabled fault kinds that never fired: a run that did not test what it claims."""
    fired = Counter[str]()
    for name, n in faults.items():
        fired[name.split(":", 1)[0]] += n
    return [
        f"{kind} is on but fired 0 times"
        for kind in FAULT_KINDS
        if config.on(kind) and not fired[kind]
    ]


def _check_outcome(
    world: World, job_id: str, item: dict[str, Any], read: Any, problems: list[str]
) -> None:
    status = item["status"]["S"]
    raw = read(schema.outcome_key(job_id))
    outcome = json.loads(raw) if raw else None
    plan = world.plans.get(job_id)
    attempt = int(item.get("attempt", {}).get("N", "1"))
    if outcome is not None and int(outcome.get("attempt") or 1) < attempt:
        # From an earlier attempt (its session was given up for lost just before it stored
        # it): the poller ignores it, and so does this check.
        world.figures.durable["stale outcomes ignored"] += 1
        outcome = None
    if outcome is not None:
        expected = outcome.get("status")
        if expected == "FAILED" and (outcome.get("error") or {}).get("code") == "TIMED_OUT":
            expected = "TIMED_OUT"
        reason = item.get("error", {}).get("M", {}).get("message", {}).get("S", "")
        if status == "TIMED_OUT" and expected == "CANCELLED" and "ran longer than" in reason:
            # The poller timed the job out (no outcome then), and asked the agent to cancel
            # it, which stored CANCELLED: documented in operations.md.
            return
        if status != expected:
            problems.append(f"{job_id}: outcome {expected} but record {status} ({reason[:160]})")
            return
    if status != "SUCCEEDED":
        return
    if "result_uri" in item:
        try:
            stored = read(parse_s3_uri(item["result_uri"]["S"]).key)
        except ValueError:
            stored = None  # not a URI S3 accepts: no result to compare, a finding below
    else:
        stored = item.get("result", {}).get("S", "").encode() if "result" in item else None
    if outcome is None:
        problems.append(f"{job_id}: SUCCEEDED without a stored outcome")
    want = plan.expected_result() if plan is not None else None
    if outcome is not None and want is None and "result" in outcome:
        want = encode_json(outcome["result"]).encode()
    if stored is None or (want is not None and stored != want):
        problems.append(f"{job_id}: stored result differs from the job's ({len(stored or b'')} B)")


def _check_notified(
    world: World, job_id: str, item: dict[str, Any], got: list[dict[str, Any]], problems: list[str]
) -> None:
    status = item["status"]["S"]
    if "notified_at" not in item:
        problems.append(f"{job_id}: {status} but notified_at never recorded")
    if not got:
        problems.append(f"{job_id}: {status} but no notification in the inbox")
    for document in got:
        if document.get("job_id") != job_id or document.get("status") != status:
            problems.append(f"{job_id}: notification says {document.get('status')}, not {status}")
    published = [e for e in world.events.get(job_id, []) if e[1] == "publish-ok"]
    if len(got) != len(published):
        problems.append(f"{job_id}: {len(got)} in the inbox, {len(published)} publishes seen")
    world.figures.duplicates += max(len(got) - 1, 0)


def _check_window(world: World, job_id: str, problems: list[str]) -> None:
    """A publish is allowed only while notified_at is not yet recorded: a second publish
    after a recorded notified_at is a duplicate outside the documented window."""
    events = sorted(world.events.get(job_id, []))
    recorded = [seq for seq, what, _ in events if what == "record-notified-ok"]
    if not recorded:
        return
    late = [
        (seq, who) for seq, what, who in events if what == "publish-start" and seq > recorded[0]
    ]
    if late:
        problems.append(f"{job_id}: published again after notified_at was recorded by {late}")


def count_stops(world: World) -> None:
    log = world.log_dir / "runtime.log"
    if not log.exists():
        return
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r"stopped: (.+)$", line)
        if match and match.group(1) in STOP_REASONS:
            name = STOP_REASONS[match.group(1)]
            if name in FAULT_KINDS:
                world.figures.fault(name)
            else:
                world.figures.event(name)
    if world.garbage_log.exists():
        for variant in world.garbage_log.read_text().split():
            world.figures.fault(f"garbage_agent:{variant}")
