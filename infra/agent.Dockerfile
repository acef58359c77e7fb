# The agent as a container image: used only with `-c agentArtifact=docker`.
# `cdk synth` stages this build context under .build/agent-image; `cdk deploy` builds it for
# linux/arm64 (AgentCore runs on Graviton), which needs Docker with buildx on the deploying
# machine. The default `code` artifact needs neither.
FROM public.ecr.aws/docker/library/python:3.13-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DOCKER_CONTAINER=1

COPY requirements.txt ./
RUN pip install --no-compile -r requirements.txt

COPY . .
RUN useradd --system --uid 10001 agent
USER agent

EXPOSE 8080
CMD ["python", "main.py"]
