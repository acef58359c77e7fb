"""The agent listens where AGENT_BIND_HOST says: every interface by default, as AgentCore needs."""

from __future__ import annotations

import subprocess

import psutil
import pytest

from emulator.resources import LocalResources
from testbed.agent import agent_env, running_agent
from testbed.aws import MotoEndpoint
from testbed.processes import REPO, VENV_BIN


def listening_hosts(pid: int) -> set[str]:
    connections = psutil.Process(pid).net_connections(kind="inet")
    return {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [pytest.param({}, "0.0.0.0", id="default"), ({"AGENT_BIND_HOST": "127.0.0.1"}, "127.0.0.1")],
)
def test_the_agent_binds_the_host_its_environment_names(
    moto: MotoEndpoint, resources: LocalResources, setting: dict[str, str], expected: str
) -> None:
    with running_agent(agent_env(moto, resources, **setting)) as agent:
        assert agent.ping() in {"Healthy", "HealthyBusy"}
        assert listening_hosts(agent.proc.pid) == {expected}


@pytest.mark.parametrize(
    ("name", "value"),
    [("AGENT_BIND_HOST", "every-interface"), ("PORT", "80x"), ("PORT", "70000")],
)
def test_a_bad_bind_setting_is_one_line_naming_it(name: str, value: str) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "agent_src/main.py"],
        cwd=REPO,
        env={"PATH": str(VENV_BIN), name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{name}={value!r}" in lines[0]
