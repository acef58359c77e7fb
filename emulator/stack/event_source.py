"""`python -m emulator.stack.event_source`: the poller's SQS event source mapping, locally.

Long-polls the completion queue, calls the poller's handler with an SQS-shaped event, and
deletes the messages the handler did not report in `batchItemFailures`, as Lambda's event
source mapping does. It runs in a process of its own, as a second Lambda container would,
so that a long scheduled tick never holds a signal back.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from emulator.stack.schedule import Handler, LambdaContext, load_handler, stop_on_signals
from emulator.stack.settings import REPO_ROOT

log = logging.getLogger("emulator.stack.event_source")

BATCH_SIZE = 10
"""The deployed event source's batch size (infra/completion.py)."""
WAIT_S = 1
"""A short long-poll: an empty receive returns within a second, so a stop is prompt."""


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping hands the function for these messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def run_event_source(
    handler: Handler,
    sqs: Any,
    queue_url: str,
    *,
    timeout_s: float,
    region: str,
    stop: threading.Event,
    visibility_timeout_s: int | None = None,
) -> None:
    """Receive, invoke, delete the handled messages, until `stop` is set. A failed
    invocation leaves its messages to reappear after the visibility timeout: the queue's, or
    `visibility_timeout_s` when given (a harness that wants handed-back signals sooner)."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    hide = {} if visibility_timeout_s is None else {"VisibilityTimeout": visibility_timeout_s}
    while not stop.is_set():
        try:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=BATCH_SIZE,
                WaitTimeSeconds=WAIT_S,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                **hide,
            ).get("Messages", [])
        except Exception:
            log.exception("receiving from the completion queue failed")
            stop.wait(WAIT_S)
            continue
        if not messages:
            continue
        started = time.monotonic()
        try:
            response = handler(
                sqs_event(messages, queue_arn, region), LambdaContext(timeout_s, region)
            )
        except Exception:
            log.exception("the poller failed on %d signal(s)", len(messages))
            continue
        failed = {f.get("itemIdentifier") for f in (response or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            try:
                sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )
            except Exception:
                # Undeleted signals come back and are handled again, harmlessly: a failed
                # delete must not end the event source.
                log.exception("deleting %d handled signal(s) failed", len(done))
        log.info(
            "%d signal(s) in %.2f s: %d handled, %d handed back",
            len(messages),
            time.monotonic() - started,
            len(done),
            len(failed),
        )


def main(argv: list[str] | None = None) -> int:
    """Load the handler and consume the queue until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m emulator.stack.event_source")
    parser.add_argument("--handler", type=Path, default=REPO_ROOT / "poller_lambda/handler.py")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--timeout-s", type=float, required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = stop_on_signals("the current batch")
    handler = load_handler(args.handler.resolve())
    sqs = boto3.session.Session().client("sqs", region_name=args.region)
    log.info("consuming %s", args.queue_url)
    run_event_source(
        handler, sqs, args.queue_url, timeout_s=args.timeout_s, region=args.region, stop=stop
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
