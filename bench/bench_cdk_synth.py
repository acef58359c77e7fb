"""`cdk synth` time, warm: the CDK CLI synthesizing the stack (cdk-nag on) with the bundles
already built in .build/ by an earlier synth, as a developer's second `make synth` is."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table

ROOT = Path(__file__).resolve().parents[1]
RUNS = 3


def _synth(outdir: str) -> float:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    started = time.monotonic()
    subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--output", outdir],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=900,
    )
    return time.monotonic() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        first = _synth(tmp)  # builds or reuses the bundles in .build/
        warm = [_synth(tmp) for _ in range(RUNS)]
    print_table(
        "cdk synth (CLI, cdk-nag on, code-asset bundles cached in .build/), seconds",
        ["run", "runs", "median", "max"],
        [
            ["first in this run (bundles built if .build/ is empty)", 1, first, first],
            ["warm", RUNS, statistics.median(warm), max(warm)],
        ],
    )


if __name__ == "__main__":
    main()
