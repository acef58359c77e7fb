# The agent as a container image: used only with `-c agentArtifact=docker`.
# `cdk synth` stages this build context under .build/agent-image/ (the agent folder and the
# agentjobs library under agent/, their combined requirements beside it); `cdk deploy` builds
# it for linux/arm64 (AgentCore runs on Graviton), which needs Docker with buildx on the
# deploying machine. The default `code` artifact needs neither. The synth appends the CMD that
# runs the agent's entrypoint (agentEntrypoint, default main.py).
FROM public.ecr.aws/docker/library/python:3.13-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DOCKER_CONTAINER=1

COPY requirements.txt /tmp/agentjobs-requirements.txt
RUN pip install --no-compile -r /tmp/agentjobs-requirements.txt && rm /tmp/agentjobs-requirements.txt

COPY agent/ ./
RUN useradd --system --uid 10001 agent
USER agent

EXPOSE 8080
