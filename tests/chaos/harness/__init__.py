"""The chaos harness: many jobs through moto, the local runtime (real agent processes) and
several pollers at once, faults injected at random, then the invariants checked against the
table, the bucket and the inbox."""

from tests.chaos.harness.checks import poller_log_problems, unfired_faults
from tests.chaos.harness.faults import InjectedError
from tests.chaos.harness.plan import (
    FAULT_KINDS,
    HOSTILE,
    SHORT_FORM,
    ChaosConfig,
    hostile_payload,
    machine_cores,
)
from tests.chaos.harness.runner import ChaosReport, poller_logs_to, run_chaos
from tests.chaos.harness.world import World

__all__ = [
    "FAULT_KINDS",
    "HOSTILE",
    "SHORT_FORM",
    "ChaosConfig",
    "ChaosReport",
    "InjectedError",
    "World",
    "hostile_payload",
    "machine_cores",
    "poller_log_problems",
    "poller_logs_to",
    "run_chaos",
    "unfired_faults",
]
