"""`cdk synth -c agentDir=... -c agentEntrypoint=...`: a user's folder deploys as the agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bundling import PROJECT_ROOT
from tests.infra.conftest import Synth, synthesize
from tests.infra.test_bundles import (
    agent_bundle,
    assert_imports_satisfied,
    shared_objects,
    wheel_tags,
)

ENTRYPOINT = "my_agent.py"
USER_REQUIREMENT = "tabulate==0.9.0"
"""A tiny pure-Python wheel pip fetches for any platform, and nothing else depends on."""


def user_agent(folder: Path) -> Path:
    """A user's agent folder as they would have it, clutter included."""
    folder.mkdir(parents=True)
    (folder / ENTRYPOINT).write_text(
        "from tabulate import tabulate\n\n"
        "from agentjobs.protocol import JobStatus\n"
        "from helpers.tools import describe\n\n"
        "print(tabulate([[describe(), JobStatus.RUNNING]]))\n"
    )
    (folder / "helpers").mkdir()
    (folder / "helpers" / "__init__.py").write_text("")
    (folder / "helpers" / "tools.py").write_text("def describe() -> str:\n    return 'mine'\n")
    (folder / "data").mkdir()
    (folder / "data" / "prompts.txt").write_text("Summarise.\n")
    # The library line is the bundle's to satisfy: it is never looked up on an index.
    (folder / "requirements.txt").write_text(
        f"# my agent\n{USER_REQUIREMENT}  # tables\nagentjobs[agent]==0.2.0\n"
    )
    (folder / ".env").write_text("API_KEY=not-for-the-bundle\n")
    for venv in (".venv", "env"):
        (folder / venv).mkdir()
        (folder / venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "my_agent.cpython-313.pyc").write_bytes(b"\0")
    return folder


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return user_agent(tmp_path_factory.mktemp("user") / "my-agent")


@pytest.fixture(scope="module")
def user_synth(tmp_path_factory: pytest.TempPathFactory, user_folder: Path) -> Synth:
    # synthesize() raises on any unacknowledged cdk-nag finding.
    return synthesize(
        tmp_path_factory.mktemp("cdk-user-agent"),
        {"agentDir": str(user_folder), "agentEntrypoint": ENTRYPOINT},
    )


@pytest.fixture(scope="module")
def user_docker_synth(tmp_path_factory: pytest.TempPathFactory, user_folder: Path) -> Synth:
    return synthesize(
        tmp_path_factory.mktemp("cdk-user-agent-docker"),
        {
            "agentDir": os.path.relpath(user_folder, PROJECT_ROOT),
            "agentEntrypoint": ENTRYPOINT,
            "agentArtifact": "docker",
        },
    )


def test_the_runtime_runs_the_users_entrypoint(user_synth: Synth) -> None:
    runtime = user_synth.raw["Resources"][user_synth.only("AWS::BedrockAgentCore::Runtime")]
    code = runtime["Properties"]["AgentRuntimeArtifact"]["CodeConfiguration"]
    assert code["EntryPoint"] == [ENTRYPOINT]
    assert code["Runtime"] == "PYTHON_3_13"


def test_the_users_folder_is_at_the_bundles_root_without_its_clutter(user_synth: Synth) -> None:
    bundle = agent_bundle(user_synth)
    assert (bundle / ENTRYPOINT).is_file()
    assert (bundle / "helpers" / "tools.py").is_file()
    assert (bundle / "data" / "prompts.txt").read_text() == "Summarise.\n"
    assert (bundle / "requirements.txt").is_file()
    for left_out in (".env", ".venv", "env", "__pycache__"):
        assert not (bundle / left_out).exists(), left_out
    # The project's own agent is not deployed in its place.
    assert not (bundle / "main.py").exists()
    assert not (bundle / "jobagent").exists()


def test_the_bundle_holds_the_library_without_its_cli(user_synth: Synth) -> None:
    bundle = agent_bundle(user_synth)
    assert (bundle / "agentjobs" / "protocol.py").is_file()
    assert not (bundle / "agentjobs" / "cli").exists()
    assert not list(bundle.glob("agentjobs-*.dist-info")), "the library is bundled as source"


def test_the_users_requirement_and_the_librarys_are_bundled_for_arm64(user_synth: Synth) -> None:
    bundle = agent_bundle(user_synth)
    tags = wheel_tags(bundle)
    assert tags["tabulate-0.9.0.dist-info"] == ["py3-none-any"]
    assert (bundle / "tabulate").is_dir() or (bundle / "tabulate.py").is_file()
    for library_dependency in ("bedrock_agentcore-", "pydantic-", "boto3-"):
        assert any(name.startswith(library_dependency) for name in tags), library_dependency
    # Strands is the project's agent's own requirement, not the library's.
    assert not any(name.startswith("strands_agents-") for name in tags)
    assert {path.read_bytes()[18] for path in shared_objects(bundle)} == {183}  # EM_AARCH64
    assert_imports_satisfied(
        bundle, [bundle / ENTRYPOINT, bundle / "helpers", bundle / "agentjobs"]
    )


def test_docker_builds_the_same_folder_and_runs_its_entrypoint(user_docker_synth: Synth) -> None:
    manifest = json.loads((user_docker_synth.outdir / "AgentJobs.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"
    context = user_docker_synth.outdir / image["source"]["directory"]
    assert (context / "Dockerfile").read_text().endswith(f'CMD ["python", "{ENTRYPOINT}"]\n')
    assert (context / "agent" / ENTRYPOINT).is_file()
    assert (context / "agent" / "helpers" / "tools.py").is_file()
    assert (context / "agent" / "agentjobs" / "protocol.py").is_file()
    assert not (context / "agent" / "agentjobs" / "cli").exists()
    assert not (context / "agent" / ".env").exists()
    # The user's own requirements.txt is theirs, untouched; the image installs the union.
    assert "agentjobs[agent]" in (context / "agent" / "requirements.txt").read_text()
    installed = (context / "requirements.txt").read_text().split()
    assert USER_REQUIREMENT in installed
    assert any(r.startswith("bedrock-agentcore==") for r in installed)
    assert not any(r.startswith("agentjobs") for r in installed)


# --- bad folders stop the synth with one line -------------------------------------------------


def synth_refusal(outdir: Path, context: dict[str, str]) -> str:
    """Run the app as the CDK CLI does; its one line of stderr, after checking nothing was built."""
    # The CLI hands the app cdk.json's context (feature flags) merged with the `-c` values.
    cdk_json = json.loads((PROJECT_ROOT / "cdk.json").read_text())
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({**cdk_json["context"], **context}),
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(outdir.iterdir())
    return lines[0]


def test_a_missing_agent_dir_stops_the_synth(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    line = synth_refusal(tmp_path / "out", {"agentDir": str(tmp_path / "no-such-agent")})
    assert line.startswith("agentjobs: invalid context value: agentDir: ")
    assert "does not exist" in line


def test_an_agent_dir_without_the_entrypoint_stops_the_synth(tmp_path: Path) -> None:
    folder = user_agent(tmp_path / "agent")
    (tmp_path / "out").mkdir()
    line = synth_refusal(tmp_path / "out", {"agentDir": str(folder), "agentEntrypoint": "app.py"})
    assert line == (
        f"agentjobs: invalid context value: agentEntrypoint: 'app.py' is not a file in agentDir "
        f"{folder}; allowed: a .py file at its top (it has: {ENTRYPOINT})"
    )


def test_a_requirements_line_pip_options_stops_the_synth(tmp_path: Path) -> None:
    folder = user_agent(tmp_path / "agent")
    (folder / "requirements.txt").write_text(f"{USER_REQUIREMENT}\n-r more.txt\n")
    (tmp_path / "out").mkdir()
    line = synth_refusal(tmp_path / "out", {"agentDir": str(folder), "agentEntrypoint": ENTRYPOINT})
    assert line.startswith(f"agentjobs: cannot bundle the agent: agentDir {folder}: ")
    assert "requirements.txt line 2: '-r more.txt' holds a pip option" in line


def test_a_requirement_that_does_not_resolve_stops_the_synth(tmp_path: Path) -> None:
    folder = user_agent(tmp_path / "agent")
    missing = "agentjobs-test-no-such-distribution==0.0.1"
    (folder / "requirements.txt").write_text(f"{USER_REQUIREMENT}\n{missing}\n")
    (tmp_path / "out").mkdir()
    line = synth_refusal(tmp_path / "out", {"agentDir": str(folder), "agentEntrypoint": ENTRYPOINT})
    assert line.startswith(f"agentjobs: cannot bundle the agent: agentDir {folder}: ")
    assert f"its requirements ({USER_REQUIREMENT}, {missing}) do not install" in line
    assert missing in line.split("Python 3.13", 1)[1]  # pip's own reason names it
    assert "expected: requirements with wheels for manylinux2014_aarch64" in line
