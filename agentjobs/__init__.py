"""agentjobs: long-running AI agent jobs on Amazon Bedrock AgentCore Runtime."""

# The wire protocol before anything else: it re-exports its parsers, which build on it, so an
# import of the parsers' module first must still find the protocol whole.
import agentjobs.protocol

# Likewise the job record before its item encoding, which it re-exports.
import agentjobs.record  # noqa: F401
