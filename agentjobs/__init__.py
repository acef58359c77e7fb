"""agentjobs: long-running AI agent jobs on Amazon Bedrock AgentCore Runtime."""
