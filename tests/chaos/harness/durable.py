"""Durable jobs under chaos: resumable plans, the agents' run log, and the invariants on
attempts, overlapping runs and the history."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentjobs.history import EventLog, EventType
from agentjobs.protocol import ErrorCode, encode_json
from agentjobs.store import StoreError
from builtin_jobs.synthetic import SyntheticInput, sized_result

if TYPE_CHECKING:
    from tests.chaos.harness.plan import ChaosConfig, JobPlan
    from tests.chaos.harness.world import World

RESUMABLE_SHARE = 1 / 3
"""The share of ordinary jobs submitted resumable, with RESUMABLE_ATTEMPTS attempts."""
RESUMABLE_ATTEMPTS = 3

DURABLE_INVARIANTS = {
    "durable-ended": "every resumable job with attempts left ended SUCCEEDED; LOST only at "
    "its last attempt, FAILED only from its own failures; no other job resumed",
    "one-run-at-a-time": "no job worked in two sessions (or twice in one process) at once",
    "resumed-events": "the history shows a `resumed` event for every session a job resumed in",
    "durable-sessions": "a resumed job's active session is stopped once the job is collected",
}


def resumable_input(
    rng: random.Random, seconds: tuple[float, float] = (1.5, 4.0)
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A resumable synthetic job: long enough to be hit by a fault, checkpointing often,
    some failing (a retried TransientFailure) on their first one or two attempts."""
    job_input: dict[str, Any] = {
        "seconds": round(rng.uniform(*seconds), 3),
        "cpu": rng.random() < 0.1,
        "fail": "the job failed on purpose" if rng.random() < 0.05 else None,
        "result_bytes": 100_000 if rng.random() < 0.1 else rng.choice((0, 50, 500, 5000)),
        "checkpoint_every_s": round(rng.uniform(0.2, 0.6), 3),
    }
    if rng.random() < 0.25:
        job_input["fail_attempts"] = rng.choice((1, 2))
    return job_input, {"max_attempts": RESUMABLE_ATTEMPTS}


# The poller's own log lines for a resumable job's moves (written once the move's record
# write succeeded, before its history, which an injected fault may cut short).
MOVES = {
    "job resumed in a fresh session": "resumes after a loss",
    "job handed off to a fresh session": "handoffs",
}


def logged_moves(poller_log: Path) -> Counter[str]:
    """The resumes after a loss and the handoffs the poller logged, by MOVES' names."""
    found = Counter[str]()
    if not poller_log.exists():
        return found
    for line in poller_log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") in MOVES:
            found[MOVES[record["message"]]] += 1
    return found


def unexercised(config: ChaosConfig, moves: Counter[str]) -> list[str]:
    """The durable moves the enabled fault kinds promise but the run never made: a run that
    did not test what it claims. A world's outliving resumable job meets its session's max
    lifetime; its target job is the injector's first hit (see World)."""
    found = []
    if config.on("max_lifetime") and not moves["handoffs"]:
        found.append("no resumable job was handed off, though max_lifetime is on")
    if (config.on("agent_sigkill") or config.on("session_stop")) and not moves[
        "resumes after a loss"
    ]:
        found.append("no resumable job resumed after a lost session, though kills are on")
    return found


# The agents' run log (see chaos_agent.py)


@dataclass
class Run:
    """One run of a job in one agent process, as its run log shows it."""

    job_id: str
    session_id: str
    pid: int
    attempt: int | None
    start: float
    steps: list[float] = field(default_factory=list)
    end: float | None = None
    how: str | None = None

    @property
    def last_work(self) -> float:
        """The last moment this run is known to have worked."""
        return max(self.steps, default=self.start)


def read_runs(path: Path) -> dict[str, list[Run]]:
    """Every run in the log, by job id, in the order each process logged them."""
    runs: dict[str, list[Run]] = defaultdict(list)
    open_runs: dict[tuple[int, str], Run] = {}
    if not path.exists():
        return runs
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            key = (int(entry["pid"]), str(entry["job"]))
            what, at = entry["what"], float(entry["t"])
        except (ValueError, KeyError, TypeError):
            continue
        if what == "start":
            run = Run(key[1], str(entry["session"]), key[0], entry.get("attempt"), at)
            open_runs[key] = run
            runs[key[1]].append(run)
        elif key in open_runs:
            run = open_runs[key]
            if what == "step":
                run.steps.append(at)
            elif what == "end":
                run.end, run.how = at, entry.get("how")
                del open_runs[key]
    return runs


def overlapping(runs: list[Run]) -> list[str]:
    """Pairs of runs of one job that both worked at once: a later run started while an
    earlier one had not ended and worked on after that start."""
    found: list[str] = []
    ordered = sorted(runs, key=lambda r: r.start)
    for i, first in enumerate(ordered):
        for later in ordered[i + 1 :]:
            if first.end is not None and first.end <= later.start:
                continue
            if first.last_work > later.start:
                where = (
                    "in one process"
                    if first.pid == later.pid
                    else f"in sessions {first.session_id[-12:]} and {later.session_id[-12:]}"
                )
                found.append(
                    f"{first.job_id}: attempts {first.attempt} and {later.attempt} worked at "
                    f"once {where} ({first.last_work - later.start:.2f} s)"
                )
    return found


# The checks


def check_durable(
    world: World, items: dict[str, dict[str, Any]], sessions: dict[str, str]
) -> dict[str, list[str]]:
    """The durable-job invariants against the records, the run log and the history."""
    problems: dict[str, list[str]] = {name: [] for name in DURABLE_INVARIANTS}
    figures = world.figures.durable
    runs = read_runs(world.runs_log)
    history = _history_reader(world)
    for job_id, plan in world.plans.items():
        item = items.get(job_id)
        if item is None or plan.hostile is not None:
            continue
        record = _RecordView(item)
        job_runs = runs.get(job_id, [])
        figures["runs observed"] += len(job_runs)
        problems["one-run-at-a-time"] += overlapping(job_runs)
        if plan.max_attempts <= 1:
            if record.attempt != 1:
                problems["durable-ended"].append(
                    f"{job_id}: submitted with one attempt but used {record.attempt}"
                )
            continue
        figures["resumable jobs"] += 1
        figures[f"resumable ended {record.status}"] += 1
        figures["attempts used"] += record.attempt
        problems["durable-ended"] += _ending_problems(job_id, plan, record)
        if record.active_session != plan.session_id:
            state = sessions.get(record.active_session, "Stopped")
            if state != "Stopped":
                problems["durable-sessions"].append(f"{job_id}: active session {state}")
        if history is None:
            continue
        try:
            events = history.list(job_id)
        except StoreError as exc:
            problems["resumed-events"].append(f"{job_id}: history unreadable: {exc}")
            continue
        kinds = Counter(event.type for event in events)
        figures["resumes"] += kinds[EventType.RESUMED]
        figures["handoffs"] += kinds[EventType.HANDED_OFF]
        figures["retries"] += kinds[EventType.RETRIED]
        resumed_in = {
            str(value)
            for event in events
            if event.type == EventType.RESUMED
            for value in (event.session_id, *event.detail.values())
            if isinstance(value, str)
        }
        moved_to = {r.session_id for r in job_runs} | {record.active_session}
        for session in sorted(moved_to - {plan.session_id} - resumed_in):
            if _append_excused(world, job_id):
                figures["resumed events lost to injected faults"] += 1
                continue
            problems["resumed-events"].append(
                f"{job_id}: ran in session {session[-12:]} with no `resumed` event naming it"
            )
    if history is None:
        problems["resumed-events"].append(f"{world.name}: no history table (EVENTS_TABLE)")
    return problems


@dataclass(frozen=True)
class _RecordView:
    """The few record attributes the durable checks read, from the raw DynamoDB item."""

    item: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.item.get("status", {}).get("S"))

    @property
    def attempt(self) -> int:
        return int(self.item.get("attempt", {}).get("N", "1"))

    @property
    def max_attempts(self) -> int:
        return int(self.item.get("max_attempts", {}).get("N", "1"))

    @property
    def active_session(self) -> str:
        run = self.item.get("run_session_id", {}).get("S")
        return str(run or self.item.get("session_id", {}).get("S"))

    @property
    def error(self) -> tuple[str, str]:
        error = self.item.get("error", {}).get("M", {})
        return str(error.get("code", {}).get("S", "")), str(error.get("message", {}).get("S", ""))

    def result(self, world: World) -> Any:
        if "result" in self.item:
            return json.loads(self.item["result"]["S"])
        uri = self.item.get("result_uri", {}).get("S", "")
        assert world.resources is not None
        body = world.aws("s3").get_object(Bucket=world.resources.bucket, Key=uri.split("/", 3)[3])
        return json.loads(body["Body"].read())


def _ending_problems(job_id: str, plan: JobPlan, record: _RecordView) -> list[str]:
    status, attempt, most = record.status, record.attempt, record.max_attempts
    where = f"{job_id}: {status} at attempt {attempt} of {most}"
    if most != plan.max_attempts:
        return [f"{where}, submitted with {plan.max_attempts}"]
    if attempt > most:
        return [f"{where}: more attempts than allowed"]
    if status == "SUCCEEDED":
        return []
    if status in ("LOST", "POLL_FAILED"):
        return [] if attempt == most else [f"{where}: attempts were left"]
    code, message = record.error
    if status == "FAILED" and code == ErrorCode.POLL_FAILED:
        # The poller's end for a session that stopped answering: a loss, as LOST is.
        return [] if attempt == most else [f"{where}: attempts were left"]
    if status == "FAILED" and plan.job_input.get("fail") is not None:
        return [] if message.startswith(plan.job_input["fail"][:100]) else [f"{where}: {message}"]
    if (
        status == "FAILED"
        and plan.job_input.get("fail_attempts")
        and attempt == most
        and code == ErrorCode.JOB_FAILED
    ):
        return []  # its own transient failure, on its last attempt
    if (
        status == "FAILED"
        and attempt == most
        and code == ErrorCode.JOB_CRASHED
        and "killed by signal" in message
    ):
        return []  # its process killed (an injected SIGKILL or stop) on its last attempt
    return [f"{where}: {code} {message[:160]}"]


def check_resumed_result(world: World, plan: JobPlan, item: dict[str, Any]) -> list[str]:
    """A resumable SUCCEEDED job's result: the synthetic job's own, plus the attempt it ended
    in and where that attempt resumed from."""
    record = _RecordView(item)
    result = record.result(world)
    where = f"{plan.job_id}: result"
    if not isinstance(result, dict):
        return [f"{where} is {type(result).__name__}"]
    problems = []
    if result.get("attempts") != record.attempt:
        problems.append(f"{where} says attempts {result.get('attempts')}, record {record.attempt}")
    resumed_from = result.get("resumed_from_s")
    seconds = float(plan.job_input["seconds"])
    if not isinstance(resumed_from, int | float) or not 0 <= resumed_from <= seconds:
        return [*problems, f"{where} resumed_from_s {resumed_from!r} (job of {seconds} s)"]
    if problems:
        return problems
    params = SyntheticInput(
        seconds=seconds,
        cpu=bool(plan.job_input.get("cpu", False)),
        result_bytes=int(plan.job_input["result_bytes"]),
    )
    want = sized_result(params, resumed_from_s=resumed_from, attempts=record.attempt)
    if encode_json(result) != encode_json(want):
        problems.append(f"{where} differs from the job's ({sorted(result)})")
    return problems


def _history_reader(world: World) -> EventLog | None:
    assert world.resources is not None
    table = world.resources.env().get("EVENTS_TABLE")
    return EventLog(world.aws("dynamodb"), table) if table else None


def _append_excused(world: World, job_id: str) -> bool:
    """Whether a `resumed` event of this job may be missing because the harness made it so:
    its append failed under an injected fault, the pass that resumed the job died (or
    raised) before appending it, or the resume write's answer was lost (applied, but seen as
    failed: that pass appends nothing, and the next one only sends `resume` again). The
    poller never fails a transition for its history."""
    events = world.events.get(job_id, [])
    started = {(what, who) for _, what, who in events}
    failed = any(
        what == "history-resumed-start" and ("history-resumed-ok", who) not in started
        for what, who in started
    )
    died = any(
        what == "resume-ok"
        and who in world.aborted_passes
        and ("history-resumed-start", who) not in started
        for what, who in started
    )
    lost_answer = any(what == "resume-answer-lost" for what, _ in started)
    return failed or died or lost_answer


def durable_lines(durable: Counter[str]) -> list[str]:
    """The durable figures, as `make chaos` prints them."""
    ended = ", ".join(
        f"{name.removeprefix('resumable ended ')} {n}"
        for name, n in sorted(durable.items())
        if name.startswith("resumable ended ")
    )
    return [
        f"durable jobs: {durable['resumable jobs']} resumable ({ended or 'none ended'}); "
        f"{durable['resumes']} resumes, {durable['handoffs']} handoffs, "
        f"{durable['retries']} retries, {durable['attempts used']} attempts used; "
        f"{durable['runs observed']} runs observed in the agents' run logs; "
        f"{durable['resumed events lost to injected faults']} `resumed` events lost to "
        "injected faults",
        f"the poller logged {durable['resumes after a loss logged']} resumes after a loss "
        f"and {durable['handoffs logged']} handoffs",
    ]
