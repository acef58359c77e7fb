"""The deploy bundles hold arm64 builds and everything the agent and poller import.

Checked by listing and by reading ELF headers, never by importing: this machine is x86-64.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from infra.bundling import PROJECT_ROOT
from tests.infra.conftest import Synth
from tests.support.imports import imports_of

ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183


def agent_bundle(synth: Synth) -> Path:
    runtime = synth.raw["Resources"][synth.only("AWS::BedrockAgentCore::Runtime")]
    code = runtime["Properties"]["AgentRuntimeArtifact"]["CodeConfiguration"]["Code"]
    return synth.asset_dir(code["S3"]["Prefix"])


def poller_bundle(synth: Synth) -> Path:
    function = synth.raw["Resources"][synth.only("AWS::Lambda::Function")]
    return synth.asset_dir(function["Properties"]["Code"]["S3Key"])


def shared_objects(bundle: Path) -> list[Path]:
    return sorted(bundle.rglob("*.so"))


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == ELF_MAGIC, path
    assert header[5] == 1, f"{path} is not little-endian"
    return int.from_bytes(header[18:20], "little")


def wheel_tags(bundle: Path) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for wheel in bundle.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        tags[wheel.parent.name] = [
            line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")
        ]
    return tags


def provided_modules(bundle: Path) -> set[str]:
    """Top-level names importable from the bundle root: packages, modules, extensions."""
    names = set()
    for entry in bundle.iterdir():
        if entry.is_dir() and not entry.name.endswith((".dist-info", ".data")):
            names.add(entry.name)
        elif entry.suffix in {".py", ".so"}:
            names.add(entry.name.split(".")[0])
    return names


def assert_imports_satisfied(bundle: Path, code_roots: list[Path]) -> None:
    files = [f for root in code_roots for f in root.rglob("*.py")]
    assert files, code_roots
    available = provided_modules(bundle) | set(sys.stdlib_module_names)
    missing = {
        module: sorted(where)
        for module, where in imports_of(files).items()
        if module not in available and module != "__future__"
    }
    assert not missing, f"imported but not bundled: {missing}"


@pytest.mark.parametrize("which", ["agent", "poller"])
def test_bundle_extensions_are_linux_arm64(default_synth: Synth, which: str) -> None:
    bundle = agent_bundle(default_synth) if which == "agent" else poller_bundle(default_synth)
    objects = shared_objects(bundle)
    assert objects, f"the {which} bundle has no compiled extensions to check"
    machines = {path.relative_to(bundle).as_posix(): elf_machine(path) for path in objects}
    assert {m for m in machines.values()} == {EM_AARCH64}, machines


def test_agent_bundle_wheels_are_aarch64_for_the_runtime_python(default_synth: Synth) -> None:
    tags = wheel_tags(agent_bundle(default_synth))
    assert any("bedrock_agentcore-" in name for name in tags)
    assert any("strands_agents-" in name for name in tags)
    platform_specific = {
        name: t for name, t in tags.items() if not all(tag.endswith("-any") for tag in t)
    }
    assert platform_specific, "expected compiled wheels such as pydantic_core"
    for name, wheel_tags_ in platform_specific.items():
        assert all("aarch64" in tag for tag in wheel_tags_), (name, wheel_tags_)
    assert any(tag.startswith("cp313-cp313-") for t in platform_specific.values() for tag in t)


def test_poller_bundle_wheels_are_aarch64_for_python_3_14(default_synth: Synth) -> None:
    tags = wheel_tags(poller_bundle(default_synth))
    assert any("aws_lambda_powertools-" in name for name in tags)
    assert any("aws_xray_sdk-" in name for name in tags)
    assert any("boto3-" in name for name in tags)
    compiled = [tag for t in tags.values() for tag in t if not tag.endswith("-any")]
    assert compiled and all("aarch64" in tag for tag in compiled), compiled
    assert any(tag.startswith("cp314-cp314-") for tag in compiled), compiled


def test_agent_bundle_layout_and_imports(default_synth: Synth) -> None:
    bundle = agent_bundle(default_synth)
    assert (bundle / "main.py").is_file()
    assert (bundle / "agentjobs" / "schema.py").is_file()
    assert not (bundle / "agentjobs" / "cli").exists()
    assert not list(bundle.glob("agentjobs/**/*.pyc"))
    assert_imports_satisfied(
        bundle, [bundle / "main.py", bundle / "builtin_jobs", bundle / "agentjobs"]
    )


def test_poller_bundle_layout_and_imports(default_synth: Synth) -> None:
    bundle = poller_bundle(default_synth)
    assert (bundle / "handler.py").is_file()
    assert (bundle / "jobpoller").is_dir()
    assert (bundle / "agentjobs" / "store.py").is_file()
    assert not (bundle / "agentjobs" / "cli").exists()
    assert_imports_satisfied(
        bundle, [bundle / "handler.py", bundle / "jobpoller", bundle / "agentjobs"]
    )


def test_bundles_pin_the_versions_from_pyproject(default_synth: Synth) -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        "agent": [*project["dependencies"], *project["optional-dependencies"]["agent"]],
        "poller": [*project["dependencies"], *project["optional-dependencies"]["poller"]],
    }
    for which, bundle in (
        ("agent", agent_bundle(default_synth)),
        ("poller", poller_bundle(default_synth)),
    ):
        installed = {p.name.lower() for p in bundle.glob("*.dist-info")}
        for pin in pins[which]:
            name, version = pin.split("==")
            expected = f"{name.replace('-', '_').lower()}-{version}.dist-info"
            assert expected in installed, (which, pin)


def _build_machine_traces(bundle: Path) -> dict[str, list[str]]:
    """What in a staged bundle belongs to the build machine rather than to the target."""
    found: dict[str, list[str]] = {"bin": [], "bytecode": [], "modes": [], "paths": []}
    found["bin"] = [p.relative_to(bundle).as_posix() for p in bundle.glob("bin")]
    machine_paths = {str(PROJECT_ROOT).encode(), sys.prefix.encode(), sys.base_prefix.encode()}
    for path in sorted(bundle.rglob("*")):
        name = path.relative_to(bundle).as_posix()
        if path.is_dir():
            if path.name == "__pycache__":
                found["bytecode"].append(name)
            continue
        if path.suffix in {".pyc", ".pyo"}:
            found["bytecode"].append(name)
        if path.stat().st_mode & 0o777 != 0o644:
            found["modes"].append(f"{name} {path.stat().st_mode & 0o777:o}")
        if path.suffix != ".so" and any(p in path.read_bytes() for p in machine_paths):
            found["paths"].append(name)
    return {kind: names for kind, names in found.items() if names}


@pytest.mark.parametrize("which", ["agent", "poller"])
def test_bundle_holds_nothing_of_the_build_machine(default_synth: Synth, which: str) -> None:
    bundle = agent_bundle(default_synth) if which == "agent" else poller_bundle(default_synth)
    assert list(bundle.glob("*.dist-info")), "the staged asset holds no installed packages"
    assert _build_machine_traces(bundle) == {}
