"""Real processes for tests and benchmarks alike: moto, the local runtime and stack, agents."""
