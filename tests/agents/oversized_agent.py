"""A stand-in agent whose `result` answers are too big or point elsewhere, by the session id's
first word: what a buggy or hostile agent could send the poller."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"

HUGE_ERROR_CHARS = 200_000
"""An error message that fits an SNS message on its own but not with the rest (and, past about
400 KB, no DynamoDB item): what an unbounded error would carry."""


def answer(mode: str, job_id: str, bucket: str) -> dict[str, Any]:
    """The answer to any call about `job_id` in a session of `mode`."""
    running = {"job_id": job_id, "status": "RUNNING", "progress": {"percent": 5, "message": ""}}
    huge = "E\u00e9\U0001f600\n" * (HUGE_ERROR_CHARS // 4)
    answers: dict[str, dict[str, Any]] = {
        "hugeerror": {
            "job_id": job_id,
            "status": "FAILED",
            "error": {"code": "JOB_FAILED", "message": huge},
        },
        "hugefields": {
            "job_id": job_id,
            "status": "FAILED",
            "finished_at": "2026-01-01T00:00:00.000Z" + "9" * 100_000,
            "progress": {"percent": 50, "message": huge},
            "error": {"code": "C" * 100_000, "message": "short"},
        },
        "hugeprogress": {**running, "progress": {"percent": 40, "message": huge}},
        "otherjob": {
            "job_id": job_id,
            "status": "SUCCEEDED",
            "result_uri": f"s3://{bucket}/jobs/{'0' * 32}/result.json",
        },
        "inputs": {
            "job_id": job_id,
            "status": "SUCCEEDED",
            "result_uri": f"s3://{bucket}/inputs/someone-elses.csv",
        },
        "bigresult": {"job_id": job_id, "status": "SUCCEEDED", "result": "r" * 100_000},
    }
    return answers.get(mode, running)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(json.dumps({"status": "Healthy", "time_of_last_update": 0}).encode())

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        mode = (self.headers.get(SESSION_HEADER) or "").split("-", 1)[0]
        body = answer(mode, str(payload.get("job_id", "")), os.environ.get("RESULTS_BUCKET", ""))
        self._send(json.dumps(body).encode())

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    ThreadingHTTPServer(
        ("127.0.0.1", int(os.environ.get("PORT", "8080"))), _Handler
    ).serve_forever()
