"""The local runtime keeps every agent on loopback and every log file in its folder."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint
from testbed.local_runtime import RuntimeProcess, agent_cmd, local_runtime, new_session_id


def listening_addresses(runtime: RuntimeProcess) -> list[str]:
    """The local address of every TCP socket an agent process of `runtime` listens on."""
    found = []
    for process in runtime.agent_processes():
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def assert_loopback_only(runtime: RuntimeProcess) -> None:
    addresses = listening_addresses(runtime)
    assert addresses, "the agent should be listening"
    assert all(ipaddress.ip_address(ip).is_loopback for ip in addresses), addresses


@pytest.mark.parametrize(
    "agent",
    [
        pytest.param("wildcard_agent", id="sdk-agent-asking-for-0.0.0.0"),
        pytest.param("echo_agent", id="sdk-agent-on-fixed-port"),
    ],
)
def test_an_unmodified_agent_listens_on_loopback_only(agent: str) -> None:
    with local_runtime(agent_cmd_line=agent_cmd(agent)) as runtime:
        for _ in range(2):
            assert "echo" in runtime.invoke(new_session_id(), {"n": 1})
        assert_loopback_only(runtime)


def test_the_project_agent_listens_on_loopback_only_under_the_local_runtime(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    with local_runtime(
        agent_cmd_line="python agent_src/main.py",
        env={**moto.env(), **resources.env(), "JOBAGENT_SCRIPTED_MODEL": "1"},
        stop_grace_s=5,
    ) as runtime:
        answer = runtime.invoke(new_session_id(), {"action": "status"})
        assert "status" in answer or "error" in answer, answer
        assert_loopback_only(runtime)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RuntimeProcess, Path]]:
    """One runtime for the log tests, writing agent logs three folders down a folder of its
    own: each test looks only at the files its own session added."""
    root = tmp_path_factory.mktemp("loopback-logs")
    logs = root / "a" / "b" / "logs"
    with local_runtime("echo_agent", extra_args=["--agent-log-dir", str(logs)]) as runtime:
        yield runtime, root


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "session_id",
    [
        pytest.param("../../" + "x" * 40, id="parent-dirs"),
        pytest.param("/tmp/" + "y" * 40, id="absolute"),
        pytest.param("." * 40, id="dots"),
        pytest.param("z" * 256, id="longest-id"),
    ],
)
def test_a_session_id_never_chooses_where_its_log_is_written(
    logged: tuple[RuntimeProcess, Path], session_id: str
) -> None:
    runtime, root = logged
    logs = root / "a" / "b" / "logs"
    before = _files_under(root)
    answer = runtime.invoke(session_id, {"n": 1})
    assert answer["session_id"] == session_id
    # The runtime opens the log before it starts the agent that answered.
    written = sorted(_files_under(root) - before)
    assert len(written) == 1, written
    assert written[0].parent == logs
    assert written[0].suffix == ".log"
    assert len(written[0].name) <= 255


def test_an_ordinary_session_id_names_its_log_as_it_is(
    logged: tuple[RuntimeProcess, Path],
) -> None:
    runtime, root = logged
    session_id = new_session_id()
    runtime.invoke(session_id, {"n": 1})
    assert (root / "a" / "b" / "logs" / f"{session_id}.log").is_file()
