"""The chaos suite's durable-job checks see what they claim: two runs of one job working at
once, in two sessions or in one process, and nothing when runs follow one another; a run
that made no resume after a loss or no handoff, with the faults that promise them on."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.chaos.harness import FAULT_KINDS, ChaosConfig
from tests.chaos.harness.durable import logged_moves, overlapping, read_runs, unexercised

JOB = "a" * 32
OLD = "old-session-" + "1" * 30
NEW = "new-session-" + "2" * 30


def write_log(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps({"job": JOB, **line}) + "\n" for line in lines))
    return path


def run_lines(
    pid: int, session: str, attempt: int, start: float, steps: list[float], end: float | None
) -> list[dict[str, Any]]:
    lines = [{"t": start, "pid": pid, "session": session, "attempt": attempt, "what": "start"}]
    lines += [
        {"t": t, "pid": pid, "session": session, "attempt": attempt, "what": "step"} for t in steps
    ]
    if end is not None:
        lines.append(
            {
                "t": end,
                "pid": pid,
                "session": session,
                "attempt": attempt,
                "what": "end",
                "how": "JobStopped",
            }
        )
    return lines


def test_a_run_that_worked_on_after_a_later_run_started_is_an_overlap(tmp_path: Path) -> None:
    # The old session's run was never told to stop (no end logged) and kept stepping.
    log = write_log(
        tmp_path / "runs.log",
        sorted(
            run_lines(10, OLD, 1, 100.0, [101.0, 102.0, 105.5], None)
            + run_lines(20, NEW, 2, 104.0, [104.5, 105.0], 106.0),
            key=lambda line: line["t"],
        ),
    )
    runs = read_runs(log)[JOB]
    assert [(r.session_id, r.attempt, r.end) for r in runs] == [(OLD, 1, None), (NEW, 2, 106.0)]
    found = overlapping(runs)
    assert len(found) == 1
    assert "attempts 1 and 2 worked at once in sessions" in found[0]


def test_a_killed_run_followed_by_a_resumed_one_is_no_overlap(tmp_path: Path) -> None:
    # SIGKILLed: no end line, but its last step came before the next run started.
    log = write_log(
        tmp_path / "runs.log",
        run_lines(10, OLD, 1, 100.0, [101.0, 102.0], None)
        + run_lines(20, NEW, 2, 104.0, [104.5], 105.0),
    )
    assert overlapping(read_runs(log)[JOB]) == []


def test_an_in_process_retry_after_its_failed_run_ended_is_no_overlap(tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "runs.log",
        run_lines(10, OLD, 1, 100.0, [101.0], 101.5) + run_lines(10, OLD, 2, 102.0, [103.0], 104.0),
    )
    runs = read_runs(log)[JOB]
    assert [r.attempt for r in runs] == [1, 2]
    assert overlapping(runs) == []


def test_two_runs_at_once_in_one_process_are_an_overlap(tmp_path: Path) -> None:
    lines = run_lines(10, OLD, 1, 100.0, [101.0, 103.0], 104.0)
    lines.insert(2, {"t": 100.5, "pid": 10, "session": OLD, "attempt": 1, "what": "start"})
    runs = read_runs(write_log(tmp_path / "runs.log", lines))[JOB]
    # The second start in one process opens a new run before the first one ended.
    assert len(runs) == 2
    assert any("in one process" in problem for problem in overlapping(runs))


def test_lines_that_are_not_run_entries_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    log.write_text('not json\n{"what": "start"}\n[1, 2]\n')
    assert read_runs(log) == {}
    assert read_runs(tmp_path / "missing.log") == {}


def poller_lines(path: Path, messages: list[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"level": "INFO", "message": m, "job_id": JOB}) + "\n" for m in messages)
        + "not json\n"
    )
    return path


def test_a_run_with_no_resume_after_a_loss_did_not_test_what_it_claims(tmp_path: Path) -> None:
    log = poller_lines(tmp_path / "poller.log", ["job handed off to a fresh session"] * 2)
    moves = logged_moves(log)
    assert moves == Counter({"handoffs": 2})
    assert unexercised(ChaosConfig(), moves) == [
        "no resumable job resumed after a lost session, though kills are on"
    ]
    no_kills = replace(
        ChaosConfig(), faults=frozenset(FAULT_KINDS) - {"agent_sigkill", "session_stop"}
    )
    assert unexercised(no_kills, moves) == []


def test_a_run_with_no_handoff_did_not_test_what_it_claims(tmp_path: Path) -> None:
    log = poller_lines(tmp_path / "poller.log", ["job resumed in a fresh session", "other"])
    moves = logged_moves(log)
    assert unexercised(ChaosConfig(), moves) == [
        "no resumable job was handed off, though max_lifetime is on"
    ]
    no_lifetime = replace(ChaosConfig(), faults=frozenset(FAULT_KINDS) - {"max_lifetime"})
    assert unexercised(no_lifetime, moves) == []
    assert unexercised(ChaosConfig(), logged_moves(tmp_path / "missing.log")) != []
