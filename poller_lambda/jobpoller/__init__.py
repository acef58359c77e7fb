"""The poller's logic: reconcile jobs in flight with their AgentCore sessions, notify once."""
