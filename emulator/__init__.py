"""Local stand-ins for AWS: the AgentCore data-plane runtime and the local stack."""
