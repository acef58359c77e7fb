"""Run checkov on the synthesized template; every failed check must be explained in
security/checkov-skips.yaml. Prints each finding with its reason; exits 1 otherwise.

    python security/checkov_gate.py CHECKOV_BINARY TEMPLATE [--verbose]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SKIPS = Path(__file__).with_name("checkov-skips.yaml")


def failed_checks(checkov: str, template: str) -> list[tuple[str, str]]:
    """(check id, resource) of every failed check."""
    run = subprocess.run(  # noqa: S603 - the pinned checkov the Makefile installs
        [checkov, "-f", template, "--framework", "cloudformation", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode not in (0, 1) or not run.stdout.strip():
        raise SystemExit(f"checkov did not run (exit {run.returncode}):\n{run.stderr[-2000:]}")
    report: Any = json.loads(run.stdout)
    reports = report if isinstance(report, list) else [report]
    return [
        (str(c["check_id"]), str(c["resource"]))
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def main(argv: list[str]) -> int:
    """Compare the findings with the explained skips."""
    verbose = "--verbose" in argv
    checkov, template = [a for a in argv if a != "--verbose"]
    skips: list[dict[str, str]] = yaml.safe_load(SKIPS.read_text())
    problems = [f"skip {s} has no reason" for s in skips if not str(s.get("reason", "")).strip()]
    used: set[int] = set()
    failures = failed_checks(checkov, template)
    for check, resource in failures:
        match = next(
            (
                i
                for i, s in enumerate(skips)
                if s["check"] == check and resource.startswith(s["resource"])
            ),
            None,
        )
        if match is None:
            problems.append(f"{check} on {resource}: not explained in {SKIPS.name}")
            continue
        used.add(match)
        if verbose:
            print(f"accepted {check} on {resource}: {' '.join(skips[match]['reason'].split())}")
    problems += [
        f"stale skip {s['check']} on {s['resource']}: nothing fails it any more"
        for i, s in enumerate(skips)
        if i not in used
    ]
    for problem in problems:
        print(f"checkov: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"checkov: {len(failures)} failed checks, each explained in {SKIPS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
