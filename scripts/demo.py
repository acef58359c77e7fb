"""`make demo`: a long job's life on the local stack, each real command printed before it runs."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import psutil

from agentjobs.cli.discovery import from_env_file
from agentjobs.cli.errors import ExitCode
from agentjobs.envfile import read_env_file
from agentjobs.protocol import JobStatus
from agentjobs.record_items import from_item
from emulator.stack.runner import running_pids
from emulator.stack.settings import REPO_ROOT, StackSettings, StackSettingsError
from emulator.stack.state import read_state

VENV_BIN = Path(sys.executable).parent

# Variables that would send the demo's CLI calls to a deployed stack or real credentials.
_DROPPED_ENV = (
    "AGENTJOBS_STACK",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)

HEALTHY_BUSY_WAIT_S = 15.0
"""The local runtime learns a session's ping every 2 s; a loaded machine may take longer."""

SESSION_STOP_WAIT_S = 30.0
"""The poller stops a spent session right after notifying, about a second after the job ends."""

NOTIFICATION_WAIT_S = 30

WAIT_MARGIN_S = 60.0
"""How long past the job's own length the demo waits for it to end in the table."""

ENVELOPE_SHOWN = ("Type", "TopicArn", "Subject", "Timestamp", "MessageAttributes")
ENVELOPE_LEFT_OUT = ("MessageId", "Signature", "SigningCertURL", "UnsubscribeURL")

REINVOKE_SNIPPET = """\
import json, os
import boto3
from botocore.config import Config

agentcore = boto3.client(
    "bedrock-agentcore", config=Config(retries={"mode": "standard", "max_attempts": 8}))
answer = agentcore.invoke_agent_runtime(
    agentRuntimeArn=os.environ["AGENT_RUNTIME_ARN"],
    runtimeSessionId=os.environ["SESSION_ID"],
    payload=json.dumps({"action": "result"}))
print(json.dumps(json.loads(answer["response"].read()), indent=2))
"""
"""What a caller with no CLI and no table access runs to get the result back."""


class DemoError(Exception):
    """The demo cannot go on; the message says what went wrong and where to look."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP (the terminal went away): tear down as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@dataclass(frozen=True)
class DemoSettings:
    """What `make demo` can be told through the environment."""

    fast: bool
    job_seconds: float
    resume_job_seconds: float
    """Step 4's resumable job: long enough to be stopped mid-run and resumed."""
    poller_interval_s: float
    """The demo's poller tick: progress reaches the table once per tick, so a tick of 1 s
    shows each of the job's steps; the stack's own default stays 2 s."""
    resume_stop_at_percent: float
    """How far step 4's job gets before its session is stopped."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DemoSettings:
        """Read DEMO_FAST (0 or 1): 1 is the short form, a 6 s job instead of a 24 s one."""
        text = env.get("DEMO_FAST", "").strip() or "0"
        if text not in {"0", "1"}:
            raise DemoError(f"DEMO_FAST must be 0 or 1 (1: the short form); got {text!r}")
        if text == "1":
            # 6 s: HealthyBusy shows up to one 2 s ping period after the job starts, and the
            # progress bar still moves through several ticks after that. The resumable job is
            # stopped early (20 %), so that the stop lands well before its 5 s run ends even
            # when the status checks and the stop call are slow on a loaded machine.
            return cls(
                fast=True,
                job_seconds=6.0,
                resume_job_seconds=5.0,
                poller_interval_s=0.5,
                resume_stop_at_percent=20.0,
            )
        return cls(
            fast=False,
            job_seconds=24.0,
            resume_job_seconds=8.0,
            poller_interval_s=1.0,
            resume_stop_at_percent=40.0,
        )


def parse_json(ran: subprocess.CompletedProcess[str], command: str) -> Any:
    """The JSON an `agentjobs COMMAND --json` run printed; DemoError if it failed."""
    if ran.returncode != 0:
        raise DemoError(f"`agentjobs {command}` exited with code {ran.returncode}")
    try:
        return json.loads(ran.stdout)
    except ValueError as exc:
        raise DemoError(f"`agentjobs {command} --json` printed no JSON") from exc


class Demo:
    """One run of the demo: its output, the stack it talks to, and what it has seen."""

    def __init__(self, settings: DemoSettings, stack: StackSettings, out: TextIO) -> None:
        self.settings = settings
        self.stack = stack
        self.out = out
        self.bold = out.isatty()
        self.default_state_dir = stack.state_dir == (REPO_ROOT / ".local").resolve()
        self.missed: list[str] = []
        """What the demo set out to show and did not see."""
        self.started_stack = False
        """Whether the demo started the stack (and so must stop it): a stack that was
        already running, even partly, is the developer's."""

    # -- output ---------------------------------------------------------------------

    def caption(self, title: str) -> None:
        """A step's title."""
        shown = f"\033[1m== {title}\033[0m" if self.bold else f"== {title}"
        print(f"\n{shown}", file=self.out, flush=True)

    def say(self, text: str) -> None:
        """A line of explanation."""
        print(text, file=self.out, flush=True)

    def check(self, name: str, text: str) -> None:
        """A claim the demo has just verified, in a form a script can find."""
        print(f"[check] {name}: {text}", file=self.out, flush=True)

    def miss(self, text: str) -> None:
        """Something the demo should have shown and did not: the run ends non-zero."""
        self.missed.append(text)
        self.say(f"(not seen: {text})")

    def show_command(self, shown: str) -> None:
        """The command as a reader would type it."""
        print(f"$ {shown}", file=self.out, flush=True)

    # -- running things -------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """The caller's environment without what could reach a real AWS account."""
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    def agentjobs(
        self, *args: str, capture: bool = True, show: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the `agentjobs` CLI against the local stack, printing the command first. Its
        output goes straight to the terminal unless `capture`; captured, it is shown as the
        CLI printed it unless `show` is false (the caller shows it)."""
        argv = [*args, *self.local_env_args()]
        self.show_command(shlex.join(["agentjobs", *argv]))
        ran = subprocess.run(  # noqa: S603 - our own console script, arguments built here
            [str(VENV_BIN / "agentjobs"), *argv],
            cwd=REPO_ROOT,
            env=self.base_env(),
            stdout=subprocess.PIPE if capture else None,
            text=True,
            check=False,
        )
        if capture and show:
            self.out.write(ran.stdout)
            self.out.flush()
        return ran

    def local_env_args(self) -> list[str]:
        """The CLI's `--local-env` option when the stack is not in the default place."""
        return [] if self.default_state_dir else ["--local-env", str(self.env_path)]

    def quiet_json(self, *args: str) -> Any:
        """Run an `agentjobs ... --json` command without showing it: the demo's own look."""
        ran = subprocess.run(  # noqa: S603 - our own console script, arguments built here
            [str(VENV_BIN / "agentjobs"), *args, "--json", *self.local_env_args()],
            cwd=REPO_ROOT,
            env=self.base_env(),
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        return parse_json(ran, args[0])

    def agentjobs_json(self, *args: str) -> Any:
        """Run an `agentjobs ... --json` command, show its output; the output parsed."""
        return parse_json(self.agentjobs(*args, "--json"), args[0])

    def has_cli_command(self, name: str) -> bool:
        """Whether this checkout's `agentjobs` has the command `name`."""
        ran = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [str(VENV_BIN / "agentjobs"), name, "--help"],
            cwd=REPO_ROOT,
            env=self.base_env(),
            capture_output=True,
            check=False,
        )
        return ran.returncode == 0

    @property
    def env_path(self) -> Path:
        return self.stack.state_dir / "env"

    def stack_values(self) -> dict[str, str]:
        """What the local stack recorded in its env file."""
        return read_env_file(self.env_path)

    def sessions(self) -> list[dict[str, Any]]:
        """The local runtime's session list (GET /sessions)."""
        url = f"{self.stack_values()['LOCAL_RUNTIME_URL']}/sessions"
        # A developer's HTTP proxy must not capture calls to 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as answer:
            listed: list[dict[str, Any]] = json.load(answer)["sessions"]
        return listed

    def wait_for_session(self, session_id: str, wanted: dict[str, str], timeout_s: float) -> bool:
        """Read the session list until `session_id` has the `wanted` fields; print its row."""
        self.say(f"GET {self.stack_values()['LOCAL_RUNTIME_URL']}/sessions")
        deadline = time.monotonic() + timeout_s
        row: dict[str, Any] = {}
        while True:
            row = next((s for s in self.sessions() if s.get("sessionId") == session_id), {})
            if all(row.get(key) == value for key, value in wanted.items()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        # A stopped session's ping is the last one it answered: not worth showing.
        ping = "" if row.get("state") == "Stopped" else f"  ping {row.get('ping', '?')}"
        self.say(
            f"  sessionId {row.get('sessionId', session_id)}  state {row.get('state', '?')}"
            f"{ping}  lastActivityAt {row.get('lastActivityAt', '?')}"
        )
        return all(row.get(key) == value for key, value in wanted.items())


# -- the steps ------------------------------------------------------------------------


def start_stack(demo: Demo) -> None:
    """Start the local stack with the demo's poller tick."""
    state = read_state(demo.stack.state_dir)
    if state is not None and running_pids(state):
        raise DemoError(
            f"a local stack is partly running in {demo.stack.state_dir}: stop it with "
            "`make local-down`, then run `make demo` again"
        )
    demo.caption("Starting the local stack: moto, the local AgentCore runtime, the poller")
    interval = os.environ.get("POLLER_INTERVAL_S") or f"{demo.settings.poller_interval_s:g}"
    shown = ["python", "-m", "emulator.stack", "up"]
    demo.show_command(f"POLLER_INTERVAL_S={interval} {shlex.join(shown)}")
    demo.say(
        f"(what `make local-up` runs; the demo's poller ticks every {interval} s so that the "
        "progress bar moves with each step)"
    )
    demo.started_stack = True
    # Its own session, and waited for even on Ctrl-C: a start cut short would leave
    # processes that no env file records, out of the teardown's reach.
    starting = subprocess.Popen(
        [sys.executable, "-m", "emulator.stack", "up"],
        cwd=REPO_ROOT,
        env={**demo.base_env(), "POLLER_INTERVAL_S": interval},
        start_new_session=True,
    )
    try:
        code = starting.wait()
    except BaseException:
        ignoring_signals()
        starting.wait()
        raise
    if code != 0:
        raise DemoError("the local stack did not start")


def submit_job(demo: Demo) -> tuple[str, str]:
    """Step 1: submit a job of several steps; the CLI returns at once."""
    seconds = demo.settings.job_seconds
    demo.caption(f"1. Submitting a {seconds:g} s job of 20 steps through the CLI")
    began = time.monotonic()
    answer = demo.agentjobs_json(
        "submit", "synthetic", "--set", f"seconds={seconds:g}", "--set", "result_bytes=0"
    )
    took = time.monotonic() - began
    job_id, session_id = str(answer["job_id"]), str(answer["session_id"])
    demo.say(
        f"The CLI returned after {took:.1f} s with the job id: you can disconnect now. The job "
        "runs in its AgentCore session; the poller follows it, not this terminal."
    )
    demo.check("submitted", f"job {job_id} in session {session_id}")
    return job_id, session_id


def follow_job(demo: Demo, job_id: str, session_id: str) -> None:
    """Step 2: the session is HealthyBusy while it works; the progress bar moves."""
    demo.caption("2. The session reports HealthyBusy while the job works")
    demo.say("The local runtime's session list (local only; AWS keeps this to itself):")
    if demo.wait_for_session(session_id, {"ping": "HealthyBusy"}, HEALTHY_BUSY_WAIT_S):
        demo.check("healthybusy", f"session {session_id} was HealthyBusy while its job ran")
    else:
        demo.miss(f"session {session_id} HealthyBusy within {HEALTHY_BUSY_WAIT_S:g} s")
    demo.say(
        "Following the job from the table: the poller records the session's progress at "
        "every tick, and the CLI reads the record."
    )
    # Bounded: with its poller gone, a stack would leave the demo waiting forever.
    timeout_s = demo.settings.job_seconds + WAIT_MARGIN_S
    ran = demo.agentjobs(
        "wait", job_id, "--interval", "0.5", "--timeout", f"{timeout_s:g}", capture=False
    )
    if ran.returncode == ExitCode.STILL_RUNNING:
        raise DemoError(
            f"job {job_id} was still RUNNING in the table after {timeout_s:g} s: the poller "
            "may have stopped (see poller.log)"
        )
    if ran.returncode != 0:
        raise DemoError(f"the job did not succeed (`agentjobs wait` exited {ran.returncode})")


def show_notification(demo: Demo, job_id: str) -> None:
    """Step 3a: the one notification, as an email subscriber and a machine subscriber get it."""
    demo.caption("3a. The notification, as its subscribers receive it")
    demo.say(
        "A machine subscriber (the local inbox, an SQS queue subscribed to the topic) gets "
        "JSON in SNS's envelope:"
    )
    ran = demo.agentjobs(
        "notifications", "--job", job_id, "--wait", str(NOTIFICATION_WAIT_S), "--json", show=False
    )
    notes = parse_json(ran, "notifications")["notifications"]
    for note in notes:
        shown = {
            "message": note["message"],
            "envelope": {k: note["envelope"].get(k) for k in ENVELOPE_SHOWN},
        }
        demo.say(json.dumps(shown, indent=2, ensure_ascii=False))
    demo.say(f"(the envelope's {', '.join(ENVELOPE_LEFT_OUT)} left out here)")
    demo.say(
        "An email subscriber gets the topic message's `email` text under its subject (moto sends "
        "no mail: this is the message as the poller published it, from moto's record):"
    )
    subject, email = published_email(demo, job_id)
    demo.say(f"  Subject: {subject}")
    for line in email.splitlines():
        demo.say(f"  | {line}")
    demo.check("notification", f"{len(notes)} notification(s) of job {job_id} in the inbox")


def published_email(demo: Demo, job_id: str) -> tuple[str, str]:
    """The subject and email text SNS was given for `job_id`'s notification. moto keeps what
    a topic published in its model dump (`/moto-api/data.json`), a moto-only internal API."""
    values = demo.stack_values()
    url = f"{values['AWS_ENDPOINT_URL']}/moto-api/data.json"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 10
    # moto records the publish just after delivering it to the queue: allow a moment.
    while True:
        with opener.open(url, timeout=10) as answer:
            topics = json.load(answer).get("sns", {}).get("Topic", [])
        for topic in topics:
            if topic.get("arn") != values["TOPIC_ARN"]:
                continue
            for _message_id, message, subject, _attrs, _group in topic["sent_notifications"]:
                structure = json.loads(message)
                if json.loads(structure["default"]).get("job_id") == job_id:
                    # With MessageStructure=json, SNS sends each protocol its own member
                    # and `default` to the rest (SNS Publish API reference, MessageStructure).
                    return str(subject), str(structure.get("email", structure["default"]))
        if time.monotonic() > deadline:
            raise DemoError(f"moto has no record of a notification of job {job_id}")
        time.sleep(0.25)


def fetch_result_two_ways(demo: Demo, job_id: str, session_id: str) -> None:
    """Step 3b: the result from the table, and from the same session after it was stopped."""
    demo.caption("3b. The result, two ways")
    demo.say("From the job table, with the CLI:")
    from_table = demo.agentjobs_json("result", job_id)["result"]
    demo.say("The poller stopped the spent session as soon as it had the result:")
    if demo.wait_for_session(session_id, {"state": "Stopped"}, SESSION_STOP_WAIT_S):
        demo.check("stopped", f"the poller stopped session {session_id}")
    else:
        demo.miss(f"the poller stopping session {session_id} within {SESSION_STOP_WAIT_S:g} s")
    demo.say(
        "By invoking the same session again with boto3 alone (no CLI, no table access): a "
        "fresh agent answers from the stores, and says so with live=false."
    )
    env_file = ".local/env" if demo.default_state_dir else str(demo.env_path)
    demo.show_command(f"set -a; . {env_file}; set +a")
    demo.show_command(f"SESSION_ID={session_id} python - <<'EOF'")
    demo.say(REINVOKE_SNIPPET + "EOF")
    answer = json.loads(run_snippet(demo, REINVOKE_SNIPPET, session_id))
    same = answer.get("job_id") == job_id and answer.get("result") == from_table
    if same:
        demo.check(
            "same-result",
            f"the table and the re-invoked session (live={answer.get('live')}) give the "
            f"same result: {json.dumps(from_table)}",
        )
    else:
        raise DemoError("the re-invoked session answered another result than the table holds")


def resume_after_lost_session(demo: Demo) -> None:
    """Step 4: a resumable job whose session is stopped mid-run resumes in a fresh session
    from its checkpoint and finishes; its event history (`agentjobs events`) is printed."""
    seconds = demo.settings.resume_job_seconds
    demo.caption(
        "4. A session lost mid-run: the job resumes in a fresh session from its checkpoint"
    )
    demo.say(
        f"A resumable {seconds:g} s job that checkpoints its work every 0.5 s, allowed 2 attempts:"
    )
    answer = demo.agentjobs_json(
        "submit",
        "synthetic",
        "--set",
        f"seconds={seconds:g}",
        "--set",
        "checkpoint_every_s=0.5",
        "--set",
        "result_bytes=0",
        "--max-attempts",
        "2",
    )
    job_id, session_id = str(answer["job_id"]), str(answer["session_id"])
    percent = wait_for_progress(demo, job_id, demo.settings.resume_stop_at_percent)
    demo.say(
        f"At {percent:g} % its session is stopped, as AgentCore stops or recycles one (the "
        "agent gets SIGTERM, stores a last checkpoint, and tells the poller):"
    )
    demo.show_command(f"SESSION_ID={session_id} python - <<'EOF'")
    demo.say(STOP_SNIPPET + "EOF")
    run_snippet(demo, STOP_SNIPPET, session_id)
    demo.say("The poller finds the session lost and starts attempt 2 in a fresh session:")
    timeout_s = seconds + WAIT_MARGIN_S
    ran = demo.agentjobs("wait", job_id, "--interval", "0.5", "--timeout", f"{timeout_s:g}")
    if ran.returncode != 0:
        raise DemoError(
            f"the resumed job did not succeed (`agentjobs wait` exited {ran.returncode})"
        )
    result = demo.agentjobs_json("result", job_id)["result"]
    demo.say("Its history, oldest first:")
    demo.agentjobs("events", job_id)
    events = demo.quiet_json("events", job_id)
    resumed = [e for e in events if e["type"] == "resumed"]
    resumed_from = float(result.get("resumed_from_s", 0.0))
    notes = demo.quiet_json("notifications", "--job", job_id, "--wait", str(NOTIFICATION_WAIT_S))[
        "notifications"
    ]
    if resumed and result.get("attempts") == 2 and resumed_from > 0:
        demo.check(
            "resume",
            f"job {job_id} resumed in session {resumed[0].get('session_id')} from its "
            f"checkpoint at {resumed_from:g} s of {seconds:g} s, succeeded on attempt 2, "
            f"{len(notes)} notification(s)",
        )
    else:
        demo.miss(f"job {job_id} resuming from a checkpoint in a fresh session")


STOP_SNIPPET = """\
import os, boto3
agentcore = boto3.client("bedrock-agentcore")
agentcore.stop_runtime_session(
    agentRuntimeArn=os.environ["AGENT_RUNTIME_ARN"],
    runtimeSessionId=os.environ["SESSION_ID"])
print("stopped", os.environ["SESSION_ID"])
"""
"""What stops a session: the same call AgentCore's own console and SDKs make."""


def wait_for_progress(demo: Demo, job_id: str, percent: float) -> float:
    """Wait (quietly) until the job's recorded progress reaches `percent`; the progress seen.
    The record is read in this process: an `agentjobs status` per look can take seconds to
    start on a loaded machine, and the job must still be running when its session is stopped."""
    table = demo.stack_values()["JOBS_TABLE"]
    dynamodb = from_env_file(demo.env_path, None).client("dynamodb")
    deadline = time.monotonic() + demo.settings.resume_job_seconds + WAIT_MARGIN_S
    while time.monotonic() < deadline:
        item = dynamodb.get_item(
            TableName=table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise DemoError(f"job {job_id} is not in the job table {table}")
        record = from_item(item)
        if record.status != JobStatus.RUNNING:
            raise DemoError(f"job {job_id} ended ({record.status}) before its session was stopped")
        if record.progress.percent >= percent:
            return record.progress.percent
        time.sleep(0.1)
    raise DemoError(f"job {job_id} did not reach {percent:g} % in time")


def run_snippet(demo: Demo, snippet: str, session_id: str) -> str:
    """Run a printed boto3 snippet against the local stack, as a caller with only the env file
    would; its output shown and returned."""
    env = {
        **{k: v for k, v in demo.base_env().items() if not k.startswith("AWS_")},
        **demo.stack_values(),
        "SESSION_ID": session_id,
    }
    ran = subprocess.run(  # noqa: S603 - the interpreter, running the snippet printed above
        [sys.executable, "-c", snippet],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    demo.out.write(ran.stdout)
    demo.out.flush()
    if ran.returncode != 0:
        raise DemoError(f"the boto3 call on session {session_id} failed (exit {ran.returncode})")
    return ran.stdout


# -- teardown -------------------------------------------------------------------------


def stack_processes(stack: StackSettings) -> list[psutil.Process]:
    """Every process of the recorded stack now: its three processes and all their children
    (the agents, the fast path's consumer)."""
    state = read_state(stack.state_dir)
    found: dict[int, psutil.Process] = {}
    for pid in state.pids.values() if state is not None else []:
        try:
            leader = psutil.Process(pid)
            family = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            continue
        found.update((p.pid, p) for p in family)
    return list(found.values())


def tear_down(demo: Demo) -> bool:
    """Stop the stack the demo started and check that none of its processes is left."""
    demo.caption("5. Stopping the local stack")
    family = stack_processes(demo.stack)
    pids = " ".join(str(p.pid) for p in sorted(family, key=lambda p: p.pid))
    demo.check("processes", f"{len(family)} running before teardown (pids {pids})")
    demo.show_command("python -m emulator.stack down")
    # Its own session: a second Ctrl-C must not cut the teardown short.
    subprocess.run(
        [sys.executable, "-m", "emulator.stack", "down"],
        cwd=REPO_ROOT,
        env=demo.base_env(),
        start_new_session=True,
        check=False,
    )
    _, alive = psutil.wait_procs(family, timeout=15)
    left = [p for p in alive if _still_running(p)]
    if left:
        demo.say(f"Still running: pids {' '.join(str(p.pid) for p in left)}")
        return False
    demo.check("teardown", f"all {len(family)} processes of the stack have exited")
    return True


def _still_running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP end the story as Ctrl-C does, so that teardown still runs."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ignoring_signals() -> None:
    """From here on, nothing interrupts the teardown."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def stack_running(demo: Demo) -> bool:
    """Whether a local stack already runs in the demo's state directory."""
    ran = subprocess.run(
        [sys.executable, "-m", "emulator.stack", "status"],
        cwd=REPO_ROOT,
        env=demo.base_env(),
        capture_output=True,
        check=False,
    )
    return ran.returncode == 0


def tell_story(demo: Demo) -> None:
    """Steps 1 to 4, on a running stack."""
    job_id, session_id = submit_job(demo)
    follow_job(demo, job_id, session_id)
    show_notification(demo, job_id)
    fetch_result_two_ways(demo, job_id, session_id)
    resume_after_lost_session(demo)


def main(out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when every step happened, 130 (or 128 + the signal) if interrupted."""
    try:
        settings = DemoSettings.from_env(os.environ)
        stack = StackSettings.from_env()
    except (DemoError, StackSettingsError) as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 2
    demo = Demo(settings, stack, out)
    began = time.monotonic()
    code = 0
    with signals_as_interrupts():
        try:
            if stack_running(demo):
                demo.caption("Using the local stack that is already running (it stays up)")
            else:
                start_stack(demo)
            tell_story(demo)
        except DemoError as exc:
            print(f"make demo: {exc}; the logs are in {stack.state_dir}/", file=sys.stderr)
            code = 1
        except Exception as exc:
            # A stack process that died mid-demo, say: one line, never a traceback.
            print(
                f"make demo: unexpected {type(exc).__name__}: {exc}; the logs are in "
                f"{stack.state_dir}/",
                file=sys.stderr,
            )
            code = 1
        except KeyboardInterrupt:
            code = 130
        except Interrupted as exc:
            code = 128 + exc.signum
        if code >= 128:
            print("\nInterrupted: stopping everything the demo started.", file=out, flush=True)
        if demo.started_stack:
            ignoring_signals()
            if not tear_down(demo) and code == 0:
                code = 1
    if code == 0 and demo.missed:
        print(f"\nmake demo: not seen: {'; '.join(demo.missed)}", file=sys.stderr)
        code = 1
    if code == 0:
        print(f"\nDemo done in {time.monotonic() - began:.0f} s.", file=out, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
