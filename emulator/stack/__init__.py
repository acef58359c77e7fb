"""The local stack: moto, the local AgentCore runtime and the poller's schedule, on one machine."""
