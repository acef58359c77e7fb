"""A stand-in agent that answers `result` badly, chosen by the session id's first word."""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(200, json.dumps({"status": "Healthy", "time_of_last_update": 0}).encode())

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        job_id = payload.get("job_id", "")
        mode = (self.headers.get(SESSION_HEADER) or "").split("-", 1)[0]
        bucket = os.environ.get("RESULTS_BUCKET", "")
        answers = {
            "notjson": b"<html>gateway hiccup</html>",
            "array": b"[1, 2, 3]",
            "unknownstatus": {"job_id": job_id, "status": "DONE"},
            "bigresult": {"job_id": job_id, "status": "SUCCEEDED", "result": "x" * 300_000},
            "missinguri": {
                "job_id": job_id,
                "status": "SUCCEEDED",
                "result_uri": f"s3://{bucket}/jobs/{job_id}/result.json",
            },
            "good": {"job_id": job_id, "status": "SUCCEEDED", "result": {"ok": True}},
        }
        answer = answers.get(mode, {"job_id": job_id, "status": "RUNNING"})
        self._send(200, answer if isinstance(answer, bytes) else json.dumps(answer).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
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
