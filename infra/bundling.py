"""Local bundling of Python deploy artifacts for Linux arm64 with pip: no Docker, cached."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "manylinux2014_aarch64"
"""AgentCore microVMs and our Lambda both run Linux on Graviton (arm64)."""
BUNDLE_FORMAT = "2"
"""Bump to invalidate every cached bundle (and pip install) when the layout of a bundle changes."""

FILE_MODE = 0o644
"""Every file in a bundle: the CDK CLI zips each file with its own mode (and a fixed 1980
timestamp, cdk-assets' archive.ts), so a mode left by pip or a strict umask would reach the
zip; Lambda reads the code as another user, so every file must be world-readable. Nothing
in a bundle is executed directly: AgentCore runs `python main.py`, Lambda imports."""
DIR_MODE = 0o755

_SKIPPED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_BUILD_MACHINE_DIRS = ("bin",)
"""Top-level folders pip --target fills for this machine only: console scripts whose shebang
is the build machine's interpreter. Nothing imports them; the `*.dist-info/RECORD` lines
that name them are harmless."""


class BundlingError(RuntimeError):
    """A bundle could not be built; the message says what is missing or what pip said."""


class PipInstallError(BundlingError):
    """pip could not install a bundle's requirements for the target platform."""

    def __init__(self, message: str, pip_said: str) -> None:
        super().__init__(message)
        self.pip_said = pip_said
        """pip's own one-line reason, e.g. 'ERROR: No matching distribution found for x==1'."""


@dataclass(frozen=True)
class SourceTree:
    """A folder copied into a bundle: `source`'s contents land under `target` ('' = root)."""

    source: Path
    target: str = ""
    exclude: tuple[str, ...] = ()
    """Top-level entries of `source` left out (e.g. a CLI the runtime never imports)."""


@dataclass(frozen=True)
class PythonBundle:
    """One deploy artifact: source trees plus pip requirements installed for arm64."""

    trees: tuple[SourceTree, ...]
    requirements: tuple[str, ...]
    python_version: str
    """The target runtime's Python (e.g. '3.13'): pip picks wheels built for it."""
    platform: str = PLATFORM
    """pip's platform tag; the deploy's default, overridden to run a bundle on this machine."""

    def asset_hash(self) -> str:
        """Fingerprint of everything that goes into the bundle, so CDK can skip rebuilding."""
        digest = hashlib.sha256()
        digest.update(f"{BUNDLE_FORMAT}|{self.platform}|{self._requirements_key()}".encode())
        for tree in self.trees:
            for path in _files(tree):
                digest.update(f"{tree.target}/{path.relative_to(tree.source).as_posix()}".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def _requirements_key(self) -> str:
        return f"py{self.python_version}|" + "|".join(sorted(self.requirements))

    def dependencies_dir(self, cache_root: Path) -> Path:
        """The cached pip install for these requirements; built on first use."""
        key = f"{BUNDLE_FORMAT}|{self.platform}|{self._requirements_key()}"
        target = cache_root / "pip" / hashlib.sha256(key.encode()).hexdigest()[:24]
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Install next to the final place and rename: an interrupted synth never leaves a
        # half-filled cache behind that later synths would trust.
        staging = Path(tempfile.mkdtemp(prefix="installing-", dir=target.parent))
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--only-binary=:all:", "--implementation", "cp",
            "--platform", self.platform, "--python-version", self.python_version,
            "--target", str(staging), *self.requirements,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            said = _pip_reason(result.stderr)
            raise PipInstallError(
                f"pip could not install {' '.join(self.requirements)} for {self.platform} / "
                f"Python {self.python_version}: {said}",
                said,
            )
        _drop_build_machine_artefacts(staging)
        publish_staging(staging, target)
        return target

    def build(self, output_dir: Path, cache_root: Path) -> None:
        """Fill `output_dir` with the dependencies and the source trees."""
        for tree in self.trees:
            if not tree.source.is_dir():
                raise BundlingError(f"{tree.source} does not exist; nothing to bundle from it")
        _copy_tree(self.dependencies_dir(cache_root), output_dir)
        for tree in self.trees:
            destination = output_dir / tree.target
            for path in _files(tree):
                copy_to = destination / path.relative_to(tree.source)
                copy_to.parent.mkdir(parents=True, exist_ok=True)
                # A hard link into the cache must be replaced, never written through.
                copy_to.unlink(missing_ok=True)
                shutil.copyfile(path, copy_to)
                copy_to.chmod(FILE_MODE)
        _normalise_dir_modes(output_dir)


@jsii.implements(ILocalBundling)
class _LocalPipBundling:
    """CDK's local-bundling hook: builds the bundle on this machine, never in Docker."""

    def __init__(self, bundle: PythonBundle, cache_root: Path) -> None:
        self._bundle = bundle
        self._cache_root = cache_root

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        self._bundle.build(Path(output_dir), self._cache_root)
        return True


def bundling_options(bundle: PythonBundle, cache_root: Path) -> dict[str, Any]:
    """Keyword arguments for a CDK asset (`Code.from_asset`, `from_code_asset`)."""
    return {
        "asset_hash": bundle.asset_hash(),
        "asset_hash_type": AssetHashType.CUSTOM,
        "bundling": BundlingOptions(
            # Required by the API, never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("public.ecr.aws/docker/library/python:3-slim"),
            local=_LocalPipBundling(bundle, cache_root),
        ),
    }


def requirements_from_pyproject(pyproject: Path, extras: Sequence[str]) -> tuple[str, ...]:
    """The project's own dependencies plus the named extras, pinned as in pyproject.toml."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found: list[str] = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise BundlingError(f"{pyproject} has no optional-dependencies group {extra!r}")
        found.extend(optional[extra])
    return tuple(found)


def folder_requirements(folder: Path, provided: Iterable[str] = ()) -> tuple[str, ...]:
    """What a user's agent folder asks pip for: its requirements.txt, else its pyproject.toml's
    `[project].dependencies`, else nothing. Requirements on a project in `provided` (the
    library the bundle brings itself) are left out.

    Raises BundlingError naming the file, the line and what is expected, for anything pip
    would not take as a plain requirement: the bundle's pip install is keyed on these strings.
    """
    skip = {canonicalize_name(name) for name in provided}
    requirements_txt = folder / "requirements.txt"
    pyproject = folder / "pyproject.toml"
    if requirements_txt.is_file():
        found = [
            (f"{requirements_txt.name} line {number}", text)
            for number, text in _requirement_lines(requirements_txt)
        ]
    elif pyproject.is_file():
        found = [
            (f"{pyproject.name} [project].dependencies[{index}]", text)
            for index, text in enumerate(_pyproject_dependencies(pyproject))
        ]
    else:
        return ()
    parsed: list[str] = []
    for where, text in found:
        if text.startswith("-") or re.search(r"\s--?[A-Za-z]", text):
            raise BundlingError(
                f"{where}: {text!r} holds a pip option; expected requirement specifiers only "
                "(name, version, extras, markers), one a line, e.g. tabulate==0.9.0"
            )
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            reason = (str(exc).splitlines() or ["unreadable"])[0]
            raise BundlingError(
                f"{where}: {text!r} is not a requirement ({reason}); expected a specifier "
                "such as tabulate==0.9.0"
            ) from None
        if canonicalize_name(requirement.name) not in skip:
            parsed.append(str(requirement))
    return tuple(parsed)


def _requirement_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each requirement in a requirements file, as pip reads one:
    `#` comments (at the start or after a space) and blank lines dropped, `\\` joins lines."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.__class__.__name__
        raise BundlingError(f"{path.name}: cannot be read as UTF-8 text ({reason})") from None
    pending, first = "", 0
    for number, line in enumerate(lines, start=1):
        if not pending:
            first = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        text = re.sub(r"(^|\s)#.*$", "", pending + line).strip()
        pending = ""
        if text:
            yield first, text
    if pending.strip():
        yield first, pending.strip()


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        raise BundlingError(f"{path.name}: cannot be read as TOML ({reason})") from None
    project = document.get("project")
    if not isinstance(project, dict):
        if "poetry" in document.get("tool", {}):
            raise BundlingError(
                f"{path.name}: has Poetry's dependencies but no [project] table; expected "
                "[project].dependencies (PEP 621) or a requirements.txt next to it"
            )
        return []
    if "dependencies" in project.get("dynamic", []):
        raise BundlingError(
            f"{path.name}: [project].dependencies is dynamic; expected them listed in "
            "pyproject.toml, or a requirements.txt next to it"
        )
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise BundlingError(
            f"{path.name}: [project].dependencies is not a list of strings; expected e.g. "
            'dependencies = ["tabulate==0.9.0"]'
        )
    return [d.strip() for d in dependencies]


def _pip_reason(stderr: str) -> str:
    """pip's first ERROR line (what it could not find or reconcile), else its last line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["pip gave no reason"])[0 if errors else -1]


def write_source_tree(trees: Iterable[SourceTree], destination: Path) -> None:
    """Copy source trees into a fresh `destination` (used for the Docker build context)."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    for tree in trees:
        if not tree.source.is_dir():
            raise BundlingError(f"{tree.source} does not exist; nothing to bundle from it")
        for path in _files(tree):
            copy_to = destination / tree.target / path.relative_to(tree.source)
            copy_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy_to)


def _files(tree: SourceTree) -> Iterator[Path]:
    """The tree's files in a stable order, without caches, bytecode or excluded entries."""
    if not tree.source.is_dir():
        return
    for root, dirs, files in os.walk(tree.source):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIPPED_NAMES
            and not (here == tree.source and d in tree.exclude)
            and not d.endswith(".egg-info")
        )
        for name in sorted(files):
            if name.endswith(_SKIPPED_SUFFIXES) or (here == tree.source and name in tree.exclude):
                continue
            yield here / name


def publish_staging(staging: Path, target: Path) -> None:
    """Move a folder built beside its final place into it, in one rename: an interrupted synth
    never leaves a half-built folder that later synths would trust. When another synth got
    there first with the same content-named folder, theirs is used."""
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():
            raise


def _drop_build_machine_artefacts(install: Path) -> None:
    """Leave in a fresh pip install only what the target imports, with normalised modes."""
    for name in _BUILD_MACHINE_DIRS:
        shutil.rmtree(install / name, ignore_errors=True)
    for root, dirs, files in os.walk(install):
        here = Path(root)
        for name in [d for d in dirs if d in _SKIPPED_NAMES]:
            shutil.rmtree(here / name)
            dirs.remove(name)
        for name in files:
            path = here / name
            if name.endswith(_SKIPPED_SUFFIXES):
                path.unlink()
            elif not path.is_symlink():
                path.chmod(FILE_MODE)
        here.chmod(DIR_MODE)


def _normalise_dir_modes(root: Path) -> None:
    """Folders are not zipped, but a staged bundle others read should not depend on umask."""
    root.chmod(DIR_MODE)
    for here, dirs, _names in os.walk(root):
        for name in dirs:
            (Path(here) / name).chmod(DIR_MODE)


def _copy_tree(source: Path, destination: Path) -> None:
    """Copy a cached install, hard-linking where the filesystem allows: it is never edited."""

    def link_or_copy(src: str, dst: str) -> object:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return dst

    shutil.copytree(source, destination, copy_function=link_or_copy, dirs_exist_ok=True)
