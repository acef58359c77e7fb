"""The agent's deploy artifact: its code zip or Docker image, and the role's right to fetch it."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from aws_cdk import aws_bedrockagentcore as agentcore
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.bundling import (
    BundlingError,
    PipInstallError,
    PythonBundle,
    SourceTree,
    bundling_options,
    folder_requirements,
    publish_staging,
    requirements_from_pyproject,
    write_source_tree,
)
from infra.settings import LIBRARY_PACKAGE, ArtifactKind

AGENT_PYTHON = agentcore.AgentCoreRuntime.PYTHON_3_13
AGENT_PYTHON_VERSION = AGENT_PYTHON.value.removeprefix("PYTHON_").replace("_", ".")
"""'3.13': pip fetches wheels built for the runtime's interpreter."""
ENTRYPOINT = "main.py"
"""The default entrypoint; `agentEntrypoint` names another file at the top of the agent folder.
AgentCore's direct code deployment runs an entrypoint .py file of the zip, its dependencies
beside it at the root (AgentCore developer guide, "Direct code deployment for Python"; the
CodeConfiguration's EntryPoint holds one or two elements, e.g. ["main.py"])."""
LIBRARY_EXTRAS = ("agent",)
"""What the bundled library needs at run time: its base dependencies and the `agent` extra."""
DOCKERFILE = Path(__file__).with_name("agent.Dockerfile")
IMAGE_CONTEXTS = Path(".build") / "agent-image"
"""Under the project root: one staged Docker build context per content, never rewritten."""
LEFT_OUT_OF_BUNDLE = frozenset({"node_modules", "cdk.out", "__pycache__"})
"""Top-level entries of an agent folder that are never the agent's code. Names starting
with a dot (.venv, .git, .env with its secrets) and virtual environments are left out too."""


def agent_bundle(project_root: Path, agent_dir: Path | None = None) -> PythonBundle:
    """The agent's zip: the agent folder at the root (default `agent_src`), the agentjobs
    library beside it, the library's run-time dependencies and the folder's own requirements.

    Raises BundlingError, naming the file and line, when the folder's requirements are not
    plain requirement specifiers.
    """
    folder = agent_dir or project_root / "agent_src"
    try:
        own = folder_requirements(folder, provided=[LIBRARY_PACKAGE])
    except BundlingError as exc:
        raise BundlingError(f"agentDir {folder}: {exc}") from None
    library = requirements_from_pyproject(project_root / "pyproject.toml", LIBRARY_EXTRAS)
    return PythonBundle(
        trees=_agent_trees(project_root, folder),
        requirements=(*library, *(r for r in own if r not in library)),
        python_version=AGENT_PYTHON_VERSION,
    )


def agent_artifact(
    scope: Construct,
    role: iam.Role,
    *,
    project_root: Path,
    agent_dir: Path | None,
    kind: ArtifactKind,
    entrypoint: str,
) -> agentcore.AgentRuntimeArtifact:
    """The runtime's artifact as an asset under `scope`, and `role`'s right to fetch it.

    Raises BundlingError when the agent folder's requirements cannot be bundled.
    """
    folder = agent_dir or project_root / "agent_src"
    bundle = agent_bundle(project_root, folder)
    if kind == "docker":
        # The Docker route: synth only stages a build context; `cdk deploy` builds it.
        context = _image_context(project_root, folder, bundle, entrypoint)
        image = ecr_assets.DockerImageAsset(
            scope, "Image", directory=str(context), platform=ecr_assets.Platform.LINUX_ARM64
        )
        # ECR scopes pulls to a repository, not an image: the bootstrap's repository.
        image.repository.grant_pull(role)
        return agentcore.AgentRuntimeArtifact.from_ecr_repository(image.repository, image.image_tag)
    _check_requirements_install(bundle, folder, project_root / ".build")
    code = s3_assets.Asset(
        scope,
        "Code",
        path=str(folder),
        **bundling_options(bundle, project_root / ".build"),
    )
    # AgentCore fetches the zip with the execution role: this one object, nothing else
    # of the bootstrap bucket.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadAgentCode",
            actions=["s3:GetObject"],
            resources=[code.bucket.arn_for_objects(code.s3_object_key)],
        )
    )
    return agentcore.AgentRuntimeArtifact.from_s3(
        s3.Location(bucket_name=code.s3_bucket_name, object_key=code.s3_object_key),
        AGENT_PYTHON,
        [entrypoint],
    )


def _agent_trees(project_root: Path, folder: Path, target: str = "") -> tuple[SourceTree, ...]:
    return (
        SourceTree(folder, target, exclude=_not_agent_code(folder)),
        # The CLI is the users' tool; the agent never imports it (nor typer/rich).
        SourceTree(
            project_root / LIBRARY_PACKAGE, f"{target}/{LIBRARY_PACKAGE}".lstrip("/"), ("cli",)
        ),
    )


def _not_agent_code(folder: Path) -> tuple[str, ...]:
    """Top-level entries of the agent folder that stay out of the bundle."""
    if not folder.is_dir():
        return ()
    return tuple(
        sorted(
            entry.name
            for entry in folder.iterdir()
            if entry.name.startswith(".")
            or entry.name in LEFT_OUT_OF_BUNDLE
            or (entry / "pyvenv.cfg").is_file()
        )
    )


def _check_requirements_install(bundle: PythonBundle, folder: Path, cache_root: Path) -> None:
    """Run the bundle's pip install now, so a requirement of the user's that has no wheel for
    the runtime stops the synth with one line, not inside CDK's bundling callback."""
    try:
        bundle.dependencies_dir(cache_root)
    except PipInstallError as exc:
        own = folder_requirements(folder, provided=[LIBRARY_PACKAGE])
        if not own:
            raise
        raise BundlingError(
            f"agentDir {folder}: its requirements ({', '.join(own)}) do not install for "
            f"Linux arm64 / Python {bundle.python_version} with the agentjobs library's: "
            f"{exc.pip_said}; expected: requirements with wheels for {bundle.platform} "
            "(or agentArtifact=docker, which builds from source)"
        ) from None


def _image_context(root: Path, folder: Path, bundle: PythonBundle, entrypoint: str) -> Path:
    """Stage the Docker build context: the agent folder and the library under `agent/`, the
    combined requirements and the Dockerfile beside it, so no file of the user's is replaced.

    Keyed by content and moved into place whole: synths running side by side never see a
    half-written context, nor remove one another's.
    """
    dockerfile = DOCKERFILE.read_text() + f"CMD {json.dumps(['python', entrypoint])}\n"
    requirements = "\n".join(bundle.requirements) + "\n"
    key = hashlib.sha256(f"{bundle.asset_hash()}|{dockerfile}|{requirements}".encode()).hexdigest()[
        :24
    ]
    target = root / IMAGE_CONTEXTS / key
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=target.parent))
    write_source_tree(_agent_trees(root, folder, "agent"), staging)
    (staging / "Dockerfile").write_text(dockerfile)
    (staging / "requirements.txt").write_text(requirements)
    publish_staging(staging, target)
    return target
