"""Run a deploy bundle's code from the unpacked bundle alone, as its runtime would (stdlib only).

`python -I -S from_bundle.py agent BUNDLE ENTRYPOINT` runs the entry file as `__main__`, as
AgentCore runs `python main.py` in the code's folder. `python -I -S from_bundle.py lambda
BUNDLE MODULE.FUNCTION` imports the handler as Lambda does and calls it once per JSON event
read from stdin, answering one JSON line each on stdout; whatever the handler prints (its
logs, the metrics) goes to stderr. With `-I -S` (and this file's own folder never on the
path) only the standard library and the bundle are importable.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
import time
import traceback
import uuid
from typing import Any, TextIO

FUNCTION_NAME = "agentjobs-bundle-poller"
ACCOUNT_ID = "123456789012"


class LambdaContext:
    """The parts of Lambda's context object a handler (and Powertools) reads."""

    def __init__(self, timeout_s: float, region: str) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.function_name = FUNCTION_NAME
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self.log_stream_name = "bundle"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until this invocation's timeout."""
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def _trace_header() -> str:
    # Lambda sets this for every invocation; the X-Ray SDK builds its segment from it.
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def _outside(bundle: str) -> list[str]:
    """Loaded modules that come neither from the bundle nor from the standard library."""
    stdlib = os.path.realpath(os.path.join(sys.base_prefix, "lib"))
    this_driver = os.path.realpath(__file__)
    found = []
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if not where:
            continue
        real = os.path.realpath(where)
        if real == this_driver or real.startswith(bundle + os.sep):
            continue
        if real.startswith(stdlib + os.sep) and "site-packages" not in real:
            continue
        found.append(f"{name} from {real}")
    return sorted(found)


def run_agent(bundle: str, entrypoint: str) -> None:
    """The entry file as `__main__`, with the bundle first on the path (as the script's own
    folder would be)."""
    sys.path.insert(0, bundle)
    runpy.run_path(os.path.join(bundle, entrypoint), run_name="__main__")


def run_lambda(bundle: str, handler_name: str, timeout_s: float) -> int:
    """Import the handler, then answer each event line on stdin until it closes."""
    answers: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    os.chdir(bundle)
    sys.path.insert(0, bundle)
    os.environ.setdefault("LAMBDA_TASK_ROOT", bundle)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    module_name, _, function_name = handler_name.rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    answers.write(json.dumps({"ready": True, "sys_path": sys.path}) + "\n")
    for line in sys.stdin:
        event = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
        answer: dict[str, Any]
        try:
            answer = {"result": handler(event, LambdaContext(timeout_s, region))}
        except Exception as exc:
            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answer["outside"] = _outside(bundle)
        answers.write(json.dumps(answer, default=str) + "\n")
    return 0


def main(argv: list[str]) -> int:
    """`agent BUNDLE ENTRYPOINT` or `lambda BUNDLE MODULE.FUNCTION [TIMEOUT_S]`."""
    mode, bundle, target = argv[1], os.path.realpath(argv[2]), argv[3]
    if mode == "agent":
        run_agent(bundle, target)
        return 0
    return run_lambda(bundle, target, float(argv[4]) if len(argv) > 4 else 60.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
