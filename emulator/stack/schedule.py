"""`python -m emulator.stack.schedule`: call the poller's Lambda handler every interval."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from agentjobs.protocol import utc_now
from emulator.stack.settings import LOCAL_ACCOUNT_ID, REPO_ROOT

log = logging.getLogger("emulator.stack.schedule")

FUNCTION_NAME = "agentjobs-local-poller"

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaContext:
    """The parts of Lambda's context object a handler (and Powertools) reads."""

    def __init__(self, timeout_s: float, region: str) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.function_name = FUNCTION_NAME
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{FUNCTION_NAME}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until this invocation's timeout, as Lambda reports them."""
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def scheduled_event(region: str) -> dict[str, Any]:
    """An event shaped like EventBridge Scheduler's invocation of the poller."""
    return {
        "source": "aws.scheduler",
        "detail-type": "Scheduled Event",
        "id": str(uuid.uuid4()),
        "account": LOCAL_ACCOUNT_ID,
        "region": region,
        "time": utc_now(),
        "resources": [f"arn:aws:scheduler:{region}:{LOCAL_ACCOUNT_ID}:schedule/default/local"],
        "detail": {},
    }


def load_handler(handler_path: Path) -> Handler:
    """The `handler` function of a Lambda entry file, imported as Lambda would: the file's
    folder is the root of the import path."""
    sys.path.insert(0, str(handler_path.parent))
    module = importlib.import_module(handler_path.stem)
    handler: Handler = module.handler
    return handler


def run_schedule(
    handler: Handler, *, interval_s: float, timeout_s: float, region: str, stop: threading.Event
) -> None:
    """Call the handler, then wait for the rest of the interval, until `stop` is set. A tick
    that outlasts the interval is followed by the next at once, never overlapped."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            outcome = handler(scheduled_event(region), LambdaContext(timeout_s, region))
            log.info("tick done in %.2f s: %s", time.monotonic() - started, _summary(outcome))
        except Exception:
            # A failing tick is what Lambda would log and retry on the next schedule.
            log.exception("tick failed after %.2f s", time.monotonic() - started)
        stop.wait(max(interval_s - (time.monotonic() - started), 0.0))


def _summary(outcome: object) -> str:
    try:
        text = json.dumps(outcome, default=str)
    except (TypeError, ValueError):
        text = repr(outcome)
    return text if len(text) <= 500 else text[:497] + "..."


def stop_on_signals(current: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a loop ends after `current` instead of dying
    halfway through a poller run."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after %s", signum, current)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def main(argv: list[str] | None = None) -> int:
    """Load the handler, signal readiness through the ready file, tick until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m emulator.stack.schedule")
    parser.add_argument("--handler", type=Path, default=REPO_ROOT / "poller_lambda/handler.py")
    parser.add_argument("--interval-s", type=float, required=True)
    parser.add_argument("--timeout-s", type=float, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument(
        "--completion-queue-url",
        help="also consume this queue (the fast completion path) in a second process",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = stop_on_signals("the current tick")
    handler = load_handler(args.handler.resolve())
    # In this process group, so that stopping the schedule's group stops it too.
    consumer = (
        subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "emulator.stack.event_source",
                f"--handler={args.handler}",
                f"--queue-url={args.completion_queue_url}",
                f"--timeout-s={args.timeout_s:g}",
                f"--region={args.region}",
            ]
        )
        if args.completion_queue_url
        else None
    )
    args.ready_file.write_text(str(time.time()), encoding="utf-8")
    log.info("calling %s every %g s", args.handler, args.interval_s)
    try:
        run_schedule(
            handler,
            interval_s=args.interval_s,
            timeout_s=args.timeout_s,
            region=args.region,
            stop=stop,
        )
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
