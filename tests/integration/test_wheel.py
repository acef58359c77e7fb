"""The library as a package: the built wheel installs into a fresh venv and serves a user project.

The wheel is built by uv, with the project's build backend, from a copy of the repository's
sources (an in-tree build would write build/ into the checkout), installed with its `agent` and
`cli` extras from the package index (uv's cache, filled by `make venv`, keeps that to seconds)
into a venv made from the base interpreter, and used from a folder outside the repository,
with nothing of the project's venv importable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.ports import free_port
from testbed.processes import REPO, stop_process_group, wait_http

BASE_PYTHON = str(getattr(sys, "_base_executable", "") or sys.executable)
"""The interpreter the project's venv was made from: it has none of our packages."""
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", ".build", "cdk.out", ".local", "build", "dist",
    "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
)  # fmt: skip


@dataclass(frozen=True)
class Installed:
    """The built wheel and a fresh venv it is installed in."""

    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def run(command: list[str], cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: no PYTHONPATH, no virtual environment of ours active."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    sources = root / "sources"
    shutil.copytree(REPO, sources, ignore=NOT_SOURCES)
    # pip, with no cache on a fresh machine, took most of this test's time.
    uv = str(Path(sys.executable).parent / "uv")
    run([uv, "build", "--wheel", "--quiet", "--out-dir", str(root / "dist"), str(sources)], root)
    (wheel,) = (root / "dist").glob("agentjobs-*.whl")
    venv = root / "venv"
    run([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv)], root)
    run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         f"{wheel}[agent,cli]"], root)  # fmt: skip
    return Installed(wheel=wheel, venv=venv)


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    folder = tmp_path / "my-project"
    folder.mkdir()
    assert not folder.resolve().is_relative_to(REPO)
    return folder


def wheel_metadata(wheel: Path) -> tuple[list[str], dict[str, str | list[str]]]:
    """(file names, metadata fields; Requires-Dist and Provides-Extra as lists)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata_name).decode()
    fields: dict[str, str | list[str]] = {"Requires-Dist": [], "Provides-Extra": []}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(": ")
        existing = fields.get(key)
        if isinstance(existing, list):
            existing.append(value)
        else:
            fields[key] = value
    return names, fields


def test_the_wheel_has_the_version_extras_and_pins_of_pyproject(installed: Installed) -> None:
    _names, fields = wheel_metadata(installed.wheel)
    assert fields["Name"] == "agentjobs"
    assert fields["Version"] == PROJECT["version"] == "0.2.0"
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {"agent", "poller", "cli", "local", "cdk", "dev"}
    assert sorted(fields["Provides-Extra"]) == sorted(extras)
    expected = [*PROJECT["dependencies"]] + [
        f'{pin}; extra == "{extra}"' for extra, pins in extras.items() for pin in pins
    ]
    assert sorted(fields["Requires-Dist"]) == sorted(expected)
    pins = [*PROJECT["dependencies"], *(p for pins in extras.values() for p in pins)]
    assert all("==" in pin for pin in pins), pins


def test_the_wheel_holds_the_library_cli_and_local_stand_ins_only(installed: Installed) -> None:
    names, _fields = wheel_metadata(installed.wheel)
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"agentjobs", "emulator", "agentjobs-0.2.0.dist-info"}
    for expected in ("agentjobs/protocol.py", "agentjobs/py.typed", "agentjobs/cli/app.py"):
        assert expected in names
    assert "agentjobs-0.2.0.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if n.endswith((".pyc", ".pyo"))]


def test_a_project_outside_the_repository_imports_the_installed_library(
    installed: Installed, user_project: Path
) -> None:
    (user_project / "use_it.py").write_text(
        "import importlib.metadata, json, sys\n"
        "import agentjobs, bedrock_agentcore, pydantic\n"
        "from agentjobs.protocol import JobStatus\n"
        "print(json.dumps({'file': agentjobs.__file__, 'status': JobStatus.RUNNING.value,\n"
        "    'version': importlib.metadata.version('agentjobs'), 'path': sys.path}))\n"
    )
    out = json.loads(run([str(installed.python), "use_it.py"], user_project).stdout)
    assert Path(out["file"]).is_relative_to(installed.venv), out["file"]
    assert (out["status"], out["version"]) == ("RUNNING", "0.2.0")
    ours = [p for p in out["path"] if p and Path(p).resolve().is_relative_to(REPO)]
    assert not ours, ours


def test_the_cli_extra_gives_the_agentjobs_command(
    installed: Installed, user_project: Path
) -> None:
    result = run([str(installed.venv / "bin" / "agentjobs"), "--help"], user_project)
    assert "submit" in result.stdout and "doctor" in result.stdout


def test_a_project_outside_the_repository_imports_the_job_api(
    installed: Installed, user_project: Path
) -> None:
    (user_project / "report_agent.py").write_text(REPORT_AGENT)
    result = run(
        [
            str(installed.python),
            "-c",
            "import report_agent; print(type(report_agent.app).__name__)",
        ],
        user_project,
    )
    assert result.stdout.strip() == "JobApp"


def test_a_user_agent_on_the_installed_wheel_answers_ping(
    installed: Installed, user_project: Path
) -> None:
    (user_project / "report_agent.py").write_text(REPORT_AGENT)
    port = free_port()
    env = user_env(
        PORT=str(port),
        AGENT_BIND_HOST="127.0.0.1",
        AWS_DEFAULT_REGION="us-east-1",
        # Nothing listens there: a ping makes no AWS call, and no call may reach AWS.
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        JOBS_TABLE="jobs",
        RESULTS_BUCKET="results",
    )
    with open(user_project / "agent.log", "wb") as log:
        proc = subprocess.Popen(
            [str(installed.python), "report_agent.py"],
            cwd=user_project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout_s=30, proc=proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as answer:
            assert json.loads(answer.read())["status"] == "Healthy"
    finally:
        stop_process_group(proc)


REPORT_AGENT = '''\
"""A user's agent, written against the public job API alone."""

from pydantic import BaseModel

from agentjobs.agent import JobApp, JobContext, JobFailed


class Report(BaseModel):
    source: str
    depth: int = 2


app = JobApp()


@app.job("report")
def report(params: Report, ctx: JobContext) -> dict:
    ctx.progress(10, "reading the source")
    if not params.source:
        raise JobFailed("the source is empty")
    return {"pages": params.depth}


if __name__ == "__main__":
    app.run()
'''
