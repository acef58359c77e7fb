"""agentDir and agentEntrypoint: which folders and files deploy, and one-line refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.bundling import PROJECT_ROOT, BundlingError, folder_requirements
from infra.settings import DEFAULT_AGENT_DIR, DeploySettings, DeploySettingsError


def settings(app_root: Path = PROJECT_ROOT, **context: object) -> DeploySettings:
    return DeploySettings.from_context(context.get, app_root=app_root)


def error(app_root: Path = PROJECT_ROOT, **context: object) -> str:
    with pytest.raises(DeploySettingsError) as caught:
        settings(app_root, **context)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def agent_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my-agent"
    folder.mkdir()
    (folder / "agent.py").write_text("print('hello')\n")
    (folder / "tools.py").write_text("")
    return folder


def test_default_is_the_projects_own_agent() -> None:
    parsed = settings()
    assert parsed.agent_dir == DEFAULT_AGENT_DIR == PROJECT_ROOT / "agent_src"
    assert parsed.agent_entrypoint == "main.py"


def test_absolute_folder_and_its_entrypoint(agent_folder: Path) -> None:
    parsed = settings(agentDir=str(agent_folder), agentEntrypoint="agent.py")
    assert (parsed.agent_dir, parsed.agent_entrypoint) == (agent_folder, "agent.py")


def test_relative_folder_is_taken_from_the_app(agent_folder: Path, tmp_path: Path) -> None:
    app_root = tmp_path / "app"
    app_root.mkdir()
    parsed = settings(app_root, agentDir="../my-agent/", agentEntrypoint=" agent.py ")
    assert (parsed.agent_dir, parsed.agent_entrypoint) == (agent_folder, "agent.py")
    relative = os.path.relpath(agent_folder, PROJECT_ROOT)
    assert settings(agentDir=relative, agentEntrypoint="agent.py").agent_dir == agent_folder


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    message = error(agentDir=str(tmp_path / "nowhere"))
    assert message.startswith(f"agentDir: '{tmp_path / 'nowhere'}' does not exist")
    assert "relative to the app" in message


def test_a_file_is_not_a_folder(agent_folder: Path) -> None:
    message = error(agentDir=str(agent_folder / "agent.py"))
    assert message.startswith("agentDir: ") and "is a file, not a folder" in message


@pytest.mark.parametrize("value", [".", "..", "infra/.."])
def test_the_app_itself_or_a_folder_around_it_is_refused(value: str) -> None:
    assert "holds the CDK app itself" in error(agentDir=value)


def test_a_path_with_a_nul_byte_is_refused() -> None:
    assert error(agentDir="agent\0src").startswith("agentDir: 'agent\\x00src' cannot be read")


@pytest.mark.parametrize("shadow", ["agentjobs", "agentjobs.py"])
def test_a_folder_with_its_own_agentjobs_is_refused(agent_folder: Path, shadow: str) -> None:
    target = agent_folder / shadow
    target.mkdir() if shadow == "agentjobs" else target.write_text("")
    message = error(agentDir=str(agent_folder), agentEntrypoint="agent.py")
    assert message.startswith("agentDir: ") and f"own top-level '{shadow}'" in message


def test_the_entrypoint_must_exist_and_the_refusal_lists_what_does(agent_folder: Path) -> None:
    message = error(agentDir=str(agent_folder))
    assert message == (
        f"agentEntrypoint: 'main.py' is not a file in agentDir {agent_folder}; allowed: a .py "
        "file at its top (it has: agent.py, tools.py)"
    )
    for name in ("agent.py", "tools.py"):
        (agent_folder / name).unlink()
    assert error(agentDir=str(agent_folder)).endswith("(it has: none)")


@pytest.mark.parametrize("value", ["src/agent.py", "../agent.py", "agent", "agent.sh", "-x.py"])
def test_an_entrypoint_that_is_not_a_top_level_py_file_is_refused(
    agent_folder: Path, value: str
) -> None:
    message = error(agentDir=str(agent_folder), agentEntrypoint=value)
    assert message.startswith(f"agentEntrypoint: {value!r} is not a file name; allowed: a .py")


def test_a_folder_named_like_a_py_file_is_not_an_entrypoint(agent_folder: Path) -> None:
    (agent_folder / "pkg.py").mkdir()
    message = error(agentDir=str(agent_folder), agentEntrypoint="pkg.py")
    assert message.startswith("agentEntrypoint: 'pkg.py' is not a file in agentDir")


# --- the folder's requirements --------------------------------------------------------------


def test_requirements_txt_as_pip_reads_it(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# what the agent needs\n"
        "\n"
        "tabulate==0.9.0  # tables\n"
        "Requests[socks] >=2.31, <3 ; python_version >= '3.11'\n"
        "humanize\\\n"
        "==4.12.1\n"
        "agentjobs[agent]==0.2.0\n"
        "AgentJobs\n"
    )
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["ignored==1"]\n')
    assert folder_requirements(tmp_path, provided=["agentjobs"]) == (
        "tabulate==0.9.0",
        'Requests[socks]<3,>=2.31; python_version >= "3.11"',
        "humanize==4.12.1",
    )


def test_pyproject_dependencies_when_there_is_no_requirements_txt(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "mine"\ndependencies = ["tabulate==0.9.0", "agentjobs>=0.2"]\n'
    )
    assert folder_requirements(tmp_path, provided=["agentjobs"]) == ("tabulate==0.9.0",)


def test_no_requirements_at_all(tmp_path: Path) -> None:
    assert folder_requirements(tmp_path) == ()
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert folder_requirements(tmp_path) == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tabulate==0.9.0\n-r other.txt\n", "requirements.txt line 2: '-r other.txt' holds a pip"),
        ("-e .\n", "requirements.txt line 1: '-e .' holds a pip option"),
        ("--index-url https://example.com\n", "line 1: '--index-url https://example.com' holds"),
        ("tabulate==0.9.0 --hash=sha256:00\n", "line 1: 'tabulate==0.9.0 --hash=sha256:00' hol"),
        ("\n\ntabulate=0.9\n", "requirements.txt line 3: 'tabulate=0.9' is not a requirement ("),
        ("what is this\n", "requirements.txt line 1: 'what is this' is not a requirement ("),
    ],
)
def test_requirements_txt_lines_that_are_not_plain_requirements_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "requirements.txt").write_text(text)
    with pytest.raises(BundlingError) as caught:
        folder_requirements(tmp_path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[project\n", "pyproject.toml: cannot be read as TOML ("),
        ('[project]\ndynamic = ["dependencies"]\n', "[project].dependencies is dynamic"),
        ("[tool.poetry.dependencies]\ntabulate = '0.9.0'\n", "has Poetry's dependencies"),
        ('[project]\ndependencies = "tabulate"\n', "is not a list of strings"),
        ('[project]\ndependencies = ["ok==1", "bad ="]\n', "dependencies[1]: 'bad =' is not a"),
    ],
)
def test_pyproject_dependencies_that_cannot_be_used_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(BundlingError) as caught:
        folder_requirements(tmp_path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_requirements_txt_that_is_not_text_is_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"tabulate\xff==1\n")
    with pytest.raises(BundlingError, match=r"^requirements.txt: cannot be read as UTF-8 text"):
        folder_requirements(tmp_path)
