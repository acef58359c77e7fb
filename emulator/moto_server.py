"""moto's server with DynamoDB requests made atomic, as DynamoDB's conditional writes are.

moto's threaded server evaluates a condition expression and applies the write without a
lock, so two concurrent conditional updates of one item can both succeed (seen here: two
pollers both taking a job's lease). Real DynamoDB never allows that, and the poller's
exactly-once guarantees rest on it. Serializing DynamoDB calls restores the guarantee
while SQS long polls and the other services stay concurrent.

Run: python -m emulator.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_DYNAMODB_TARGET_PREFIX = "DynamoDB_"


def serialize_dynamodb(app: WsgiApp) -> WsgiApp:
    """Wrap a WSGI app so that DynamoDB requests run one at a time, body read to the end."""
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET_PREFIX):
            return app(environ, start_response)
        with lock:
            # Materialize the body inside the lock: the write happens while it is produced.
            return list(app(environ, start_response))

    return wrapped


def main(argv: list[str] | None = None) -> None:
    """Serve moto on a host and port until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    # moto builds some URLs (SQS queue URLs among them) from this, as its own launcher does.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialize_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
