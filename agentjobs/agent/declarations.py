"""Job declarations: what `@app.job` checks at import, how input is validated and a job called."""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from agentjobs.agent.context import JobContext, JobFailed, JobStopped
from agentjobs.limits import MAX_ERROR_MESSAGE_CHARS, cap_text
from agentjobs.protocol import ErrorCode, ProtocolError, encode_json, job_name_problem

CpuRule = bool | Callable[[Any], bool]
"""Whether a job runs in a child process: always, never, or as a rule of its validated input."""

Availability = Callable[[], str | None]
"""Called at each submit: why the job cannot run in this agent now (say, a setting it needs
is missing), or None when it can."""

RetryOn = tuple[type[Exception], ...]
"""Exceptions a resumable job retries in place (with backoff), each try counted as an attempt."""

MAX_PROBLEMS_SHOWN = 10
"""An INVALID_INPUT message names at most this many of the input's problems."""


class JobDeclarationError(TypeError):
    """A job declaration the library cannot use; raised at import, naming the function."""


@dataclass(frozen=True)
class JobSpec:
    """One declared job: its name, its function and how its input is validated."""

    name: str
    func: Callable[..., Any]
    input_model: type[BaseModel] | None
    """The first parameter's pydantic model; None when it takes the raw `dict`."""
    takes_context: bool
    cpu: CpuRule = False
    availability: Availability | None = None
    resumable: bool = False
    """Declared `resumable=True`: its checkpoints let a fresh session continue it."""
    retry_on: RetryOn = ()

    @property
    def label(self) -> str:
        """The function as a person finds it in the code: module.qualname."""
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def parse(self, job_input: dict[str, Any]) -> Any:
        """The job's parameters from a submit's `input`; ProtocolError(INVALID_INPUT) naming
        each field's path and what was expected when the model refuses it."""
        if self.input_model is None:
            return job_input
        try:
            return self.input_model.model_validate(job_input)
        except ValidationError as exc:
            raise ProtocolError(ErrorCode.INVALID_INPUT, validation_message(exc)) from None

    def in_child(self, params: Any) -> bool:
        """Whether this run of the job belongs in a child process."""
        if callable(self.cpu):
            return bool(self.cpu(params))
        return self.cpu

    def unavailable(self) -> str | None:
        """Why the job cannot be started now, or None."""
        return self.availability() if self.availability is not None else None


def call_job(
    func: Callable[..., Any], takes_context: bool, params: Any, context: JobContext
) -> Any:
    """Run a job function (a coroutine function on its own event loop) to its result."""
    args = (params, context) if takes_context else (params,)
    if inspect.iscoroutinefunction(func):
        return asyncio.run(func(*args))
    return func(*args)


def plain_result(value: Any) -> Any:
    """The result as JSON will carry it (a pydantic model becomes its JSON form); TypeError
    or ValueError when JSON cannot carry it."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    encode_json(value)
    return value


NOT_JSON_MESSAGE = (
    "the job returned a result that JSON cannot carry; a job must return a dict, list, str, "
    "number, bool, None or a pydantic model (the agent logged the result's type)"
)


def declare(
    name: object,
    func: object,
    *,
    cpu: CpuRule = False,
    availability: Availability | None = None,
    resumable: object = False,
    retry_on: object = (),
) -> JobSpec:
    """Check a declaration and describe the job; JobDeclarationError saying what is wrong."""
    problem = job_name_problem(name)
    if problem is not None or not isinstance(name, str):
        raise JobDeclarationError(f"@app.job({name!r}): {problem}")
    if not callable(func) or not hasattr(func, "__qualname__"):
        raise JobDeclarationError(f"@app.job({name!r}) must decorate a function; got {func!r}")
    label = f"{func.__module__}.{func.__qualname__}"
    where = f"job {name!r} ({label})"
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise JobDeclarationError(
            f"{where} is a generator; a job returns its result once: return it, and report "
            "steps with ctx.progress(percent, message)"
        )
    if not (isinstance(cpu, bool) or callable(cpu)):
        raise JobDeclarationError(
            f"{where}: cpu must be True, False or a function of the job's input; got {cpu!r}"
        )
    if availability is not None and not callable(availability):
        raise JobDeclarationError(f"{where}: availability must be a function; got {availability!r}")
    if not isinstance(resumable, bool):
        raise JobDeclarationError(f"{where}: resumable must be True or False; got {resumable!r}")
    retried = _retry_on(where, retry_on, resumable)
    input_model, takes_context = _signature(where, func)
    if cpu is not False:
        _check_importable(where, func, input_model)
    return JobSpec(
        name=name,
        func=func,
        input_model=input_model,
        takes_context=takes_context,
        cpu=cpu,
        availability=availability,
        resumable=resumable,
        retry_on=retried,
    )


def _retry_on(where: str, retry_on: object, resumable: bool) -> RetryOn:
    expected = "a tuple of exception classes, such as retry_on=(TimeoutError, ConnectionError)"
    if isinstance(retry_on, type):
        raise JobDeclarationError(
            f"{where}: retry_on must be {expected}; write retry_on=({retry_on.__name__},)"
        )
    if not isinstance(retry_on, tuple):
        raise JobDeclarationError(f"{where}: retry_on must be {expected}; got {retry_on!r}")
    for cls in retry_on:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise JobDeclarationError(f"{where}: retry_on must be {expected}; got {cls!r} in it")
        for never in (JobFailed, JobStopped):
            # A broader class (Exception) is fine: JobFailed and JobStopped are caught first.
            if issubclass(cls, never):
                raise JobDeclarationError(
                    f"{where}: retry_on may not hold {cls.__name__}: {never.__name__} ends a "
                    "job as it asks and is never retried; name the transient errors only"
                )
    if retry_on and not resumable:
        raise JobDeclarationError(
            f"{where}: retry_on needs resumable=True: each retry is an attempt, and it "
            "continues from the job's last checkpoint"
        )
    return retry_on


_EXPECTED = (
    "expected `def job(params: Model, ctx: JobContext)` where Model is a pydantic BaseModel "
    "subclass (or `dict` for the raw input object), and ctx is optional"
)


def _signature(where: str, func: Callable[..., Any]) -> tuple[type[BaseModel] | None, bool]:
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        raise JobDeclarationError(f"{where}: its signature cannot be read; {_EXPECTED}") from None
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if not positional:
        raise JobDeclarationError(f"{where} takes no parameter for its input; {_EXPECTED}")
    if len(positional) > 2:
        names = ", ".join(p.name for p in positional)
        raise JobDeclarationError(
            f"{where} needs {len(positional)} arguments ({names}); a job gets two, its input "
            f"and its context; {_EXPECTED}"
        )
    first = positional[0]
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        raise JobDeclarationError(
            f"{where}: its annotations cannot be resolved ({type(exc).__name__}: {exc}); "
            "import the names they use at module level"
        ) from None
    annotation = hints.get(first.name, first.annotation)
    return _input_model(where, first.name, annotation), len(positional) == 2


def _input_model(where: str, parameter: str, annotation: object) -> type[BaseModel] | None:
    if annotation is inspect.Parameter.empty:
        raise JobDeclarationError(
            f"{where}: its first parameter {parameter!r} has no annotation, so its input "
            f"cannot be validated; {_EXPECTED}"
        )
    if annotation is dict or typing.get_origin(annotation) is dict:
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    raise JobDeclarationError(
        f"{where}: its first parameter {parameter!r} is annotated {_shown(annotation)}, which "
        f"cannot validate a job's input; {_EXPECTED}"
    )


def _check_importable(
    where: str, func: Callable[..., Any], input_model: type[BaseModel] | None
) -> None:
    # A child process is spawned, not forked: it imports the function and the input model
    # by name, so neither may live inside another function.
    for what, thing in (("the function", func), ("its input model", input_model)):
        qualname = getattr(thing, "__qualname__", "")
        if thing is not None and ("<locals>" in qualname or "<lambda>" in qualname):
            raise JobDeclarationError(
                f"{where}: a cpu job runs in a child process, which imports {what} by name; "
                f"define {qualname} at the top level of its module"
            )


def _shown(annotation: object) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def validation_message(exc: ValidationError) -> str:
    """Each problem pydantic found, as 'input.path': what was expected."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    problems = [f"'{_path(error['loc'])}': {_reason(error['msg'])}" for error in errors]
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    text = "the input is not valid: " + "; ".join(shown) + (f"; and {more} more" if more else "")
    return cap_text(text, MAX_ERROR_MESSAGE_CHARS)


def _path(location: tuple[int | str, ...]) -> str:
    path = "input"
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{cap_text(part, 40)}"
        else:
            path += f"[{json.dumps(cap_text(part, 40))}]"
    return path


def _reason(message: str) -> str:
    # A validator's own ValueError arrives as "Value error, <its message>".
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return cap_text(message, 300)
