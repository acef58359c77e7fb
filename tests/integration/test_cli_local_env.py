"""The CLI calls a `.local/env` endpoint only on this machine, signed only with that file's keys."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.cli import InProcessCli, assert_one_line_error, hermetic_env, run_cli

FILE_KEY = "AKIDLOCALSTACKFILE01"
USER_KEY = "users-own-key-id-not-the-files"
RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/x-AbCdE12345"


@dataclass
class Recorder:
    """A loopback HTTP server that answers every DynamoDB call with an empty item."""

    url: str
    port: int
    requests: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps({}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: shutdown() waits for the loop to look, 0.5 s by default, after every test.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    port = int(server.server_address[1])
    try:
        yield Recorder(f"http://127.0.0.1:{port}", port, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    # The console script's entry point in this process, with the same environment and working
    # directory a subprocess would get (it builds its boto3 sessions afresh on every call): an
    # interpreter start per case costs about half a CPU-second. The signing test below keeps
    # a real process, the user's credentials in its environment from its very start.
    return InProcessCli(monkeypatch, capsys)


def write_env(directory: Path, **values: str) -> Path:
    path = directory / ".local" / "env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def stack_values(endpoint: str, **overrides: str) -> dict[str, str]:
    values = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": FILE_KEY,
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "JOBS_TABLE": "jobs",
        "AGENT_RUNTIME_ARN": RUNTIME_ARN,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v}


def users_own_credentials(tmp_path: Path) -> dict[str, str]:
    """A user with real-looking keys in the environment and a profile on disk."""
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[work]\naws_access_key_id = {USER_KEY}\naws_secret_access_key = user-secret\n"
    )
    return hermetic_env(
        AWS_ACCESS_KEY_ID=USER_KEY,
        AWS_SECRET_ACCESS_KEY="user-secret",
        AWS_SESSION_TOKEN="users-session-token",
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_PROFILE="work",
    )


@pytest.mark.parametrize("how", ["cwd", "flag"])
@pytest.mark.parametrize(
    "endpoint",
    [
        "http://0.0.0.0:{port}",
        "http://agentjobs-endpoint.invalid:{port}",
        "https://dynamodb.us-east-1.amazonaws.com",
        "http://127.0.0.1@agentjobs-endpoint.invalid:{port}",
        "ftp://127.0.0.1:{port}",
        "127.0.0.1:{port}",
    ],
)
@pytest.mark.parametrize("key", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE"])
def test_an_env_file_endpoint_off_loopback_is_refused_before_any_call(
    cli: InProcessCli, tmp_path: Path, recorder: Recorder, key: str, endpoint: str, how: str
) -> None:
    value = endpoint.format(port=recorder.port)
    path = write_env(tmp_path, **stack_values(recorder.url, **{key: value}))
    flag = ["--local-env", str(path)] if how == "flag" else []
    run = cli("status", "some-job", *flag, cwd=tmp_path, env=users_own_credentials(tmp_path))
    assert_one_line_error(run, f"{key}={value}", "127.0.0.0/8", "localhost", "::1")
    assert recorder.requests == []


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:{port}", "http://localhost:{port}"])
def test_requests_are_signed_with_the_files_keys_never_the_users(
    tmp_path: Path, recorder: Recorder, endpoint: str
) -> None:
    write_env(tmp_path, **stack_values(endpoint.format(port=recorder.port)))
    run = run_cli("status", "some-job", cwd=tmp_path, env=users_own_credentials(tmp_path))
    assert_one_line_error(run, "no job some-job")
    assert recorder.requests
    for headers in recorder.requests:
        assert f"Credential={FILE_KEY}/" in headers["authorization"]
        assert "x-amz-security-token" not in headers


@pytest.mark.parametrize("missing", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_an_env_file_without_its_own_keys_is_refused_and_nothing_is_sent(
    cli: InProcessCli, tmp_path: Path, recorder: Recorder, missing: str
) -> None:
    write_env(tmp_path, **stack_values(recorder.url, **{missing: ""}))
    run = cli("status", "some-job", cwd=tmp_path, env=users_own_credentials(tmp_path))
    assert_one_line_error(run, str(Path(".local") / "env"), missing)
    assert recorder.requests == []


def test_an_env_file_without_an_endpoint_is_refused(
    cli: InProcessCli, tmp_path: Path, recorder: Recorder
) -> None:
    write_env(tmp_path, **stack_values(recorder.url, AWS_ENDPOINT_URL=""))
    run = cli("list", cwd=tmp_path, env=users_own_credentials(tmp_path))
    assert_one_line_error(run, "AWS_ENDPOINT_URL")
    assert recorder.requests == []


def test_the_users_profile_setting_plays_no_part_with_an_env_file(
    cli: InProcessCli, tmp_path: Path, recorder: Recorder
) -> None:
    write_env(tmp_path, **stack_values(recorder.url))
    env = hermetic_env(AWS_PROFILE="a-profile-this-machine-does-not-have")
    run = cli("status", "some-job", cwd=tmp_path, env=env)
    assert_one_line_error(run, "no job some-job")
    assert all(f"Credential={FILE_KEY}/" in h["authorization"] for h in recorder.requests)
