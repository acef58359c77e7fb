"""Tiny bedrock-agentcore SDK agents the local runtime tests run as real processes."""
