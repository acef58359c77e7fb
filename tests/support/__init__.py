"""Helpers shared by the test tiers: free ports, real server processes, local AWS."""
