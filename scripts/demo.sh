#!/usr/bin/env bash
# make demo: one data_report job end to end on the local stack, then tear the stack down
# (also on Ctrl-C or failure). A stack that was already running is used and left running.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
AGENTJOBS=.venv/bin/agentjobs
SAMPLE=samples/outdoor_orders.csv
started_here=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

teardown() {
  local code=$?
  if [ "$started_here" = 1 ]; then
    step "Stopping the local stack"
    "$PY" -m emulator.stack down || true
  fi
  if [ "$code" != 0 ]; then
    echo "demo failed (exit $code): the logs are in ${LOCAL_STATE_DIR:-.local}/" >&2
  fi
}

began=$SECONDS
if "$PY" -m emulator.stack status >/dev/null 2>&1; then
  step "Using the local stack that is already running (it stays up afterwards)"
else
  trap teardown EXIT
  trap 'exit 130' INT TERM
  started_here=1
  step "Starting the local stack: moto, the local AgentCore runtime, the poller's schedule"
  "$PY" -m emulator.stack up
fi

step "Submitting a data_report job on $SAMPLE through the CLI"
echo "\$ agentjobs submit data_report --set csv=@$SAMPLE --set title=..."
submitted=$("$AGENTJOBS" submit data_report --set "csv=@$SAMPLE" \
  --set "title=Outdoor store orders, September-October 2026" --json)
job_id=$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["job_id"])' <<<"$submitted")
session_id=$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["session_id"])' <<<"$submitted")
echo "job id     $job_id"
echo "session id $session_id"

step "Waiting for it: the poller re-invokes the session and records its progress"
echo "\$ agentjobs wait $job_id"
"$AGENTJOBS" wait "$job_id" --interval 0.5

step "The finished report, as stored in the job table"
echo "\$ agentjobs result $job_id"
"$AGENTJOBS" result "$job_id"

step "The notification, as the inbox queue subscribed to the SNS topic received it"
echo "\$ agentjobs notifications --job $job_id"
"$AGENTJOBS" notifications --job "$job_id" --wait 30

step "The job table, newest first"
"$AGENTJOBS" list --limit 5

printf '\nDemo done in %d s.\n' "$((SECONDS - began))"
