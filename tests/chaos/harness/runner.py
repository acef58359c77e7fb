"""Run the chaos worlds, wait for them to quiesce, check them and report."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentjobs import schema
from testbed.aws import MotoEndpoint
from testbed.local_runtime import agent_processes_of
from tests.chaos.harness.checks import (
    INVARIANTS,
    agent_log_problems,
    check_world,
    count_stops,
    poller_log_problems,
    unfired_faults,
)
from tests.chaos.harness.durable import durable_lines, logged_moves, unexercised
from tests.chaos.harness.plan import (
    FAULT_KINDS,
    HOSTILE,
    TERMINAL,
    ChaosConfig,
    Figures,
    machine_cores,
)
from tests.chaos.harness.world import SessionGate, World


@dataclass
class ChaosReport:
    """The run's figures, and whether each invariant held."""

    config: ChaosConfig
    figures: Figures
    problems: dict[str, list[str]]
    worlds: list[str]

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def text(self) -> str:
        """The figures, as `make chaos` prints them."""
        f, c = self.figures, self.config
        faults = Counter[str]()
        for name, n in f.faults.items():
            faults[name.split(":", 1)[0]] += n
        lines = [
            f"chaos run: seed {c.seed}, worlds {', '.join(self.worlds)}, "
            f"{c.pollers} pollers per world, {c.session_workers} session workers per world",
            f"jobs run: {f.jobs_submitted} accepted, {f.jobs_in_table} in the table; "
            + ", ".join(f"{s} {n}" for s, n in sorted(f.jobs_by_status.items())),
            f"hostile requests: {f.hostile_refused} refused with a clear error, "
            f"{sum(n for e, n in f.events.items() if e.startswith('hostile accepted'))} run",
            f"concurrency: at most {c.max_sessions} live sessions (peak {f.peak_sessions}, "
            f"{f.gate_wait_s:.0f} s waited for room in all), "
            f"{c.pollers if c.on('concurrent_pollers') else 1} scheduled + 1 fast-path poller "
            f"per world; peak load average {f.peak_load:.1f} on {machine_cores()} cores",
            "faults injected by kind:",
        ]
        for kind in FAULT_KINDS:
            detail = ", ".join(
                f"{name.split(':', 1)[1]} {n}"
                for name, n in sorted(f.faults.items())
                if name.startswith(f"{kind}:")
            )
            state = "" if c.on(kind) else " (off)"
            lines.append(
                f"  {kind:<20} {faults.get(kind, 0):>5}{state}"
                + (f"  ({detail})" if detail else "")
            )
        lines.append("invariants:")
        for name, text in INVARIANTS.items():
            found = self.problems.get(name, [])
            verdict = "held" if not found else f"VIOLATED x{len(found)}"
            lines.append(f"  {verdict:<14} {text}")
            lines += [f"      {p}" for p in found[:5]]
        lines += durable_lines(f.durable)
        lines += [
            f"duplicates seen: {f.duplicates} (each within the documented window)",
            f"time to quiesce: {f.quiesce_s:.1f} s, {f.quiesce_ticks} ticks "
            f"(bound {c.quiesce_tick_bound})",
            "other events: " + ", ".join(f"{k} {v}" for k, v in sorted(f.events.items())),
            f"wall time: {f.wall_s:.0f} s",
        ]
        return "\n".join(lines)


@contextmanager
def poller_logs_to(path: Path) -> Iterator[None]:
    """The poller's own Logger (JSON lines at INFO, as under Lambda), written to `path`."""
    importlib.import_module("handler")  # the Lambda entry module builds the `poller` Logger
    logger = logging.getLogger("poller")
    with open(path, "a", encoding="utf-8") as stream:
        previous = [
            (h, h.setStream(stream))
            for h in logger.handlers
            if isinstance(h, logging.StreamHandler)
        ]
        try:
            yield
        finally:
            for handler, old in previous:
                handler.setStream(old)


def run_chaos(config: ChaosConfig, moto: MotoEndpoint) -> ChaosReport:
    """Run the jobs through every world with faults on, stop injecting, tick until quiet,
    check the invariants."""
    started = time.monotonic()
    policies = ["accept", "reject"] if config.on("busy_reject") else ["accept"]
    share = [config.jobs // len(policies) + (i < config.jobs % len(policies)) for i in range(2)]
    # Each hostile request once per run, the worlds taking turns.
    worlds = [
        World(p, p, share[i], config, moto, sorted(HOSTILE)[i :: len(policies)])
        for i, p in enumerate(policies)
    ]
    total = Figures()
    problems: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    pollers = config.pollers if config.on("concurrent_pollers") else 1
    gate = SessionGate(config.max_sessions, worlds)
    for world in worlds:
        world.gate = gate
    with ExitStack() as stack:
        stack.enter_context(poller_logs_to(config.log_dir / "poller.log"))
        for world in worlds:
            stack.enter_context(world.running())
        threads: list[threading.Thread] = []
        workers: list[threading.Thread] = []

        def start(target: Any, *args: Any) -> threading.Thread:
            def guarded() -> None:
                try:
                    target(*args)
                except BaseException as exc:  # a dead harness thread must fail the run
                    total.violation("harness", f"{target.__qualname__}{args} died: {exc!r}")

            thread = threading.Thread(target=guarded, daemon=True, name=target.__qualname__)
            thread.start()
            return thread

        for world in worlds:
            world.injecting.set()
            if config.on("garbage_agent"):
                world.garbage_flag.touch()
            threads.append(start(world.watcher))
            threads.append(start(world.injector))
            threads += [start(world.poller, i) for i in range(pollers)]
            threads.append(start(world.signal_poller))
            workers += [start(world.session_worker, i) for i in range(config.session_workers)]
        try:
            for thread in workers:
                thread.join()
        except BaseException:  # interrupted: stop every thread, then the ExitStack cleans up
            for world in worlds:
                world.stopping.set()
            raise
        # Faults off: the pollers go on, clean, until every job is collected.
        for world in worlds:
            world.injecting.clear()
            world.garbage_flag.unlink(missing_ok=True)
        quiet_at = time.monotonic()
        ticks_at = [dict(w.ticks) for w in worlds]
        _wait_quiet(worlds, config)
        total.quiesce_s = time.monotonic() - quiet_at
        total.quiesce_ticks = max(
            w.ticks[i] - t.get(i, 0) for w, t in zip(worlds, ticks_at, strict=True) for i in w.ticks
        )
        for world in worlds:
            world.stopping.set()
        for thread in threads:
            thread.join(timeout=60)
            if thread.is_alive():
                total.violation("harness", f"thread {thread.name} did not stop within 60 s")
        for world in worlds:
            items = world.watch_once()
            found = check_world(world, items)
            for name, entries in found.items():
                problems[name] += [f"[{world.name}] {e}" for e in entries]
            total.jobs_submitted += len(world.plans)
            total.jobs_in_table += len(items)
    for world in worlds:  # after the runtimes stopped: their survivor checks are in
        count_stops(world)
        for invariant, text in world.figures.violations:
            problems.setdefault(invariant, []).append(text)
        problems["answers"] += [
            f"[{world.name}] INTERNAL_ERROR answered: {p}"
            for p in agent_log_problems(world.log_dir / "agents")
        ]
        total.faults.update(world.figures.faults)
        total.events.update(world.figures.events)
        total.jobs_by_status.update(world.figures.jobs_by_status)
        total.durable.update(world.figures.durable)
        total.duplicates += world.figures.duplicates
        total.hostile_refused += world.figures.hostile_refused
        total.peak_load = max(total.peak_load, world.figures.peak_load)
        survivors = agent_processes_of(world.runtime_pid)
        if survivors:
            problems["no-survivors"].append(f"[{world.name}] {survivors}")
    for invariant, text in total.violations:
        problems.setdefault(invariant, []).append(text)
    problems["poller-errors"] += poller_log_problems(config.log_dir / "poller.log")
    problems["faults-fired"] += unfired_faults(config, total.faults)
    moves = logged_moves(config.log_dir / "poller.log")
    total.durable.update({f"{name} logged": n for name, n in moves.items()})
    problems["harness"] += unexercised(config, moves)
    total.peak_sessions = gate.peak
    total.gate_wait_s = gate.waited_s
    answered = total.jobs_submitted + total.hostile_refused
    if answered < config.jobs * config.min_accepted:
        problems["harness"].append(
            f"only {answered} of {config.jobs} submits accepted or refused as expected"
        )
    if total.quiesce_ticks > config.quiesce_tick_bound:
        problems["terminal"].append(
            f"took {total.quiesce_ticks} ticks to quiesce (bound {config.quiesce_tick_bound})"
        )
    total.wall_s = time.monotonic() - started
    return ChaosReport(config, total, problems, [w.name for w in worlds])


def _wait_quiet(worlds: list[World], config: ChaosConfig) -> None:
    deadline = time.monotonic() + config.quiesce_timeout_s
    while time.monotonic() < deadline:
        snapshot = [w.watch_once() for w in worlds]
        if all(
            item.get("status", {}).get("S") in TERMINAL and schema.ATTENTION_KEY not in item
            for items in snapshot
            for item in items.values()
        ):
            return
        time.sleep(0.5)
