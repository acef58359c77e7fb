"""A local AgentCore Runtime data plane: InvokeAgentRuntime and StopRuntimeSession, locally."""
