"""The async job agent: accepts jobs, runs them in the background, keeps their outcomes durable."""
