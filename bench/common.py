"""What every benchmark prints: the machine it ran on, and its figures as a small table."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence


def machine_description() -> str:
    """One line naming the machine: CPU count, memory, Python and OS."""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown memory"
    try:
        load = f", load average {os.getloadavg()[0]:.1f} (1 min)"
    except OSError:
        load = ""
    return (
        f"{os.cpu_count()} cores, {memory}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}{load}"
    )


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0..100) of `samples`, by the inclusive method."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(pct) - 1]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a titled Markdown table with the machine description under the title."""
    print(f"\n## {title}\n\nmachine: {machine_description()}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(_cell(value) for value in row) + " |")
    print(flush=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)
