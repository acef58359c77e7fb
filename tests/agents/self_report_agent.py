"""An SDK agent that answers with what it sees of its own process, at import and now."""

from __future__ import annotations

import os
import sys
from typing import Any

import boto3
from bedrock_agentcore import BedrockAgentCoreApp
from botocore import UNSIGNED
from botocore.config import Config

app = BedrockAgentCoreApp()
AT_IMPORT = {
    "name": __name__,
    "file": __file__,
    "argv": list(sys.argv),
    "cwd": os.getcwd(),
    "path": list(sys.path),
    "env": dict(os.environ),
    "stdin_is_devnull": os.path.samestat(os.fstat(0), os.stat(os.devnull)),
    "own_modules": sorted(m for m in sys.modules if m.startswith("tests")),
}
print(f"self_report_agent: started as {__name__}", flush=True)


def dynamodb_client_seen() -> dict[str, Any]:
    """What a client made now is: the same from data a warm start's parent parsed."""
    client = boto3.session.Session().client(
        "dynamodb", region_name="eu-west-1", config=Config(signature_version=UNSIGNED)
    )
    model = client.meta.service_model
    return {
        "endpoint": client.meta.endpoint_url,
        "api_version": model.api_version,
        "operations": len(model.operation_names),
    }


@app.entrypoint
def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        **AT_IMPORT,
        "dynamodb_client": dynamodb_client_seen(),
        "pid": os.getpid(),
        "process_group": os.getpgid(0),
        "unix_session": os.getsid(0),
        "sdk_loaded": "bedrock_agentcore.runtime" in sys.modules,
    }


if __name__ == "__main__":
    app.run()
