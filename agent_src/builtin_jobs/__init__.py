"""The project's own jobs (synthetic, data_report, agent), written on the public job API."""
