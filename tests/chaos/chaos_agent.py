"""The agent command of the chaos suite: the real agent, or (for sessions named `garbage-...`)
the real agent behind a proxy that answers some `result` polls with garbage.

Run by the local runtime once per session. AGENTCORE_SESSION_ID (set by the runtime) picks
the mode. The proxy garbles answers only while the file named by CHAOS_GARBAGE_FLAG exists,
and appends one line per garbled answer to CHAOS_GARBAGE_LOG, so the suite can count them
and switch them off. A session named `garbage-first-...` garbles its first `result` answer
for sure (a short run's few polls of garbage sessions may otherwise meet none). It never
lies in a way a poller could not detect: every garbled answer is unusable (not JSON, not an
object, an unknown status, another job's id, an HTTP error), never a well-formed answer with
a wrong result.

With CHAOS_RUNS_LOG set, the agent runs in this process with its `synthetic` job observed:
each run of a job appends a JSON line when it starts, after each step of work and when it
ends (job id, session, attempt, process id, time), so the suite can tell whether two runs of
one job ever worked at the same time. A job run in a child process (`cpu`) is not observed.
"""

from __future__ import annotations

import json
import os
import random
import runpy
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import wraps
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from emulator.ports import free_port

REPO = Path(__file__).resolve().parents[2]
AGENT_MAIN = REPO / "agent_src" / "main.py"
GARBAGE_PREFIX = "garbage-"
SURE_PREFIX = "garbage-first-"
"""A garbage session whose first `result` answer (while garbling is on) is garbled for sure."""
INNER = "--inner"
"""The argument that starts the agent itself, behind a garbling proxy."""

GARBAGE: dict[str, tuple[int, bytes]] = {
    "html": (200, b"<html><body>502 Bad Gateway</body></html>"),
    "empty": (200, b""),
    "truncated": (200, b'{"job_id": "j", "status": "SUCC'),
    "array": (200, b'[{"status": "SUCCEEDED"}]'),
    "scalar": (200, b"42"),
    "unknown-status": (200, b'{"status": "DONE", "progress": {"percent": "lots"}}'),
    "no-status": (200, b'{"progress": 3, "message": "hello"}'),
    "other-job": (200, b'{"job_id": "not-this-job", "status": "SUCCEEDED", "result": 1}'),
    "succeeded-no-result": (200, b'{"status": "SUCCEEDED"}'),
    "bad-uri": (200, b'{"status": "SUCCEEDED", "result_uri": "http://elsewhere/x"}'),
    "agent-error": (200, b'{"error": {"code": "INTERNAL", "message": "try later"}}'),
    "http-500": (500, b'{"error": "Internal Server Error"}'),
}


class _Proxy(BaseHTTPRequestHandler):
    inner: str = ""
    rng = random.Random()
    rate = 0.3
    flag: Path | None = None
    garbage_log: Path | None = None
    sure = 0  # result answers still to garble whatever the draw
    sure_lock = threading.Lock()

    def do_GET(self) -> None:
        self._forward("GET", None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        if _is_result_poll(body) and self._garbling():
            variant = self.rng.choice(sorted(GARBAGE))
            status, answer = GARBAGE[variant]
            if self.garbage_log is not None:
                with open(self.garbage_log, "a", encoding="utf-8") as log:
                    log.write(f"{variant}\n")
            self._send(status, answer, "application/json")
            return
        self._forward("POST", body)

    def _garbling(self) -> bool:
        if self.flag is None or not self.flag.exists():
            return False
        with _Proxy.sure_lock:
            if _Proxy.sure > 0:
                _Proxy.sure -= 1
                return True
        return self.rng.random() < self.rate

    def _forward(self, method: str, body: bytes | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        request = urllib.request.Request(
            f"{self.inner}{self.path}", data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                self._send(answer.status, answer.read(), answer.headers.get("Content-Type"))
        except urllib.error.HTTPError as exc:
            self._send(exc.code, exc.read(), exc.headers.get("Content-Type"))
        except OSError:
            self._send(502, b'{"error": "agent unreachable"}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def _is_result_poll(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("action") == "result"


def _run_proxy(session_id: str) -> None:
    port = int(os.environ.get("PORT", "8080"))
    inner_port = free_port()
    # Same process group as this proxy: the runtime's stop (a group signal) ends both.
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), INNER],
        env={**os.environ, "PORT": str(inner_port)},
    )

    def follow_child() -> None:
        child.wait()
        os._exit(1)  # the agent died (killed): the session's process dies with it

    threading.Thread(target=follow_child, daemon=True).start()
    _Proxy.inner = f"http://127.0.0.1:{inner_port}"
    _Proxy.rng = random.Random(f"{os.environ.get('CHAOS_SEED', '0')}/{session_id}/{time.time()}")
    _Proxy.rate = float(os.environ.get("CHAOS_GARBAGE_RATE", "0.3"))
    _Proxy.sure = 1 if session_id.startswith(SURE_PREFIX) else 0
    flag = os.environ.get("CHAOS_GARBAGE_FLAG")
    log = os.environ.get("CHAOS_GARBAGE_LOG")
    _Proxy.flag = Path(flag) if flag else None
    _Proxy.garbage_log = Path(log) if log else None
    ThreadingHTTPServer(("127.0.0.1", port), _Proxy).serve_forever()


class _ObservedContext:
    """The job's own context, noting a step each time the job reports progress."""

    def __init__(self, ctx: Any, note: Callable[[str], None]) -> None:
        self._ctx = ctx
        self._note = note

    def progress(self, percent: float, message: str) -> None:
        self._ctx.progress(percent, message)
        self._note("step")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _observed(job: Callable[[Any, Any], Any], log: Path) -> Callable[[Any, Any], Any]:
    @wraps(job)
    def run(params: Any, ctx: Any) -> Any:
        def note(what: str, how: str | None = None) -> None:
            line = {
                "t": time.time(),
                "pid": os.getpid(),
                "job": ctx.job_id,
                "session": ctx.session_id,
                "attempt": getattr(ctx, "attempt", None),
                "what": what,
            }
            if how is not None:
                line["how"] = how
            # One short line per write, opened for appending: writers in several processes
            # never interleave within a line.
            with open(log, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(line) + "\n")

        note("start")
        how = "returned"
        try:
            return job(params, _ObservedContext(ctx, note))
        except BaseException as exc:
            how = type(exc).__name__
            raise
        finally:
            note("end", how)

    return run


def _run_observed_agent(log: Path) -> None:
    sys.path.insert(0, str(AGENT_MAIN.parent))
    import builtin_jobs.synthetic as synthetic  # noqa: PLC0415

    # Replaced before main.py imports it, so the agent registers the observed function.
    synthetic.run_synthetic = _observed(synthetic.run_synthetic, log)  # type: ignore[assignment]
    runpy.run_path(str(AGENT_MAIN), run_name="__main__")


def main() -> None:
    """Exec the real agent (observed when CHAOS_RUNS_LOG is set), or run it behind the
    garbling proxy."""
    session_id = os.environ.get("AGENTCORE_SESSION_ID", "")
    if sys.argv[1:] == [INNER] or not session_id.startswith(GARBAGE_PREFIX):
        runs_log = os.environ.get("CHAOS_RUNS_LOG")
        if runs_log:
            _run_observed_agent(Path(runs_log))
            return
        os.execv(sys.executable, [sys.executable, str(AGENT_MAIN)])
    _run_proxy(session_id)


if __name__ == "__main__":
    main()
