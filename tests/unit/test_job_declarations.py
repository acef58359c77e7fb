"""@app.job at import time: what it accepts, and a clear error for what it cannot use."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from agentjobs.agent import JobApp, JobContext, JobDeclarationError
from agentjobs.protocol import ErrorCode, ProtocolError


class Order(BaseModel):
    item: str
    quantity: int = Field(ge=1)


class Line(BaseModel):
    sku: str


class Basket(BaseModel):
    lines: list[Line]


def take_order(params: Order, ctx: JobContext) -> dict[str, Any]:
    return {"item": params.item}


def take_raw(params: dict[str, Any]) -> dict[str, Any]:
    return params


def _declared(name: str, func: Any, **options: Any) -> JobDeclarationError:
    app = JobApp()
    with pytest.raises(JobDeclarationError) as caught:
        app.job(name, **options)(func)
    return caught.value


def test_a_model_or_dict_annotation_declares_a_job() -> None:
    app = JobApp(default_job="order")
    assert app.job("order")(take_order) is take_order
    app.job("raw.v2")(take_raw)
    app.check()
    assert app.jobs["order"].input_model is Order
    assert app.jobs["order"].takes_context
    assert app.jobs["raw.v2"].input_model is None
    assert not app.jobs["raw.v2"].takes_context
    assert app.jobs["raw.v2"].parse({"anything": [1]}) == {"anything": [1]}


def test_a_function_without_parameters_is_refused_naming_it() -> None:
    def no_input() -> dict[str, Any]:
        return {}

    error = str(_declared("empty", no_input))
    assert "no_input" in error and "takes no parameter" in error and "pydantic" in error


def test_a_function_with_three_parameters_is_refused() -> None:
    def too_many(a: dict[str, Any], b: JobContext, c: int) -> None:
        return None

    error = str(_declared("many", too_many))
    assert "too_many" in error and "needs 3 arguments" in error


@pytest.mark.parametrize("annotation", [int, str, list[int], "missing"])
def test_an_annotation_that_cannot_validate_input_is_refused(annotation: Any) -> None:
    def job(params):  # type: ignore[no-untyped-def]
        return params

    if annotation != "missing":
        job.__annotations__ = {"params": annotation}
    error = str(_declared("typed", job))
    assert "test_an_annotation_that_cannot_validate_input_is_refused" in error
    assert "'params'" in error
    assert "pydantic BaseModel" in error


def test_an_annotation_naming_an_unknown_type_is_refused() -> None:
    def job(params: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    error = str(_declared("ghost", job))
    assert "cannot be resolved" in error and "NotDefinedAnywhere" in error


def test_a_duplicate_name_is_refused_naming_both_functions() -> None:
    app = JobApp()
    app.job("order")(take_order)
    with pytest.raises(JobDeclarationError) as caught:
        app.job("order")(take_raw)
    error = str(caught.value)
    assert "declared twice" in error and "take_order" in error and "take_raw" in error


@pytest.mark.parametrize("name", ["", "9lives", "has space", "x" * 65, "naïve", "a/b"])
def test_a_name_that_is_not_well_formed_is_refused(name: str) -> None:
    error = str(_declared(name, take_raw))
    assert "a letter, then letters, digits" in error or "at most 64" in error


def test_job_without_a_name_is_refused_with_the_right_form() -> None:
    app = JobApp()
    with pytest.raises(JobDeclarationError, match=r'@app.job\("name"\)'):
        app.job(take_raw)  # type: ignore[arg-type]


def test_a_generator_is_refused() -> None:
    def steps(params: dict[str, Any]) -> Any:
        yield params

    assert "generator" in str(_declared("steps", steps))


def test_a_cpu_job_must_be_importable_by_name() -> None:
    def local_job(params: dict[str, Any]) -> dict[str, Any]:
        return params

    error = str(_declared("local", local_job, cpu=True))
    assert "child process" in error and "top level" in error


def test_a_bad_default_job_is_refused() -> None:
    with pytest.raises(JobDeclarationError, match="default_job"):
        JobApp(default_job="not a name")
    app = JobApp(default_job="missing")
    app.job("order")(take_order)
    with pytest.raises(JobDeclarationError, match="its jobs are: order"):
        app.check()


def test_bad_cpu_and_availability_options_are_refused() -> None:
    assert "cpu must be" in str(_declared("c", take_raw, cpu="yes"))
    assert "availability must be" in str(_declared("a", take_raw, availability="never"))


def test_model_errors_name_each_field_path_and_what_was_expected() -> None:
    app = JobApp()
    app.job("order")(take_order)
    with pytest.raises(ProtocolError) as caught:
        app.jobs["order"].parse({"quantity": 0, "extra": 1})
    refusal = caught.value
    assert refusal.code == ErrorCode.INVALID_INPUT
    assert "'input.item': Field required" in refusal.message
    assert "'input.quantity': Input should be greater than or equal to 1" in refusal.message
    assert "'input.extra'" not in refusal.message  # pydantic's default: extra fields ignored


def test_nested_paths_are_shown_as_the_caller_wrote_them() -> None:
    def basket(params: Basket) -> int:
        return len(params.lines)

    app = JobApp()
    app.job("basket")(basket)
    with pytest.raises(ProtocolError) as caught:
        app.jobs["basket"].parse({"lines": [{"sku": "a"}, {"sku": 5}]})
    assert "'input.lines[1].sku': Input should be a valid string" in caught.value.message


def test_a_refusal_does_not_echo_the_value_it_refused() -> None:
    app = JobApp()
    app.job("order")(take_order)
    with pytest.raises(ProtocolError) as caught:
        app.jobs["order"].parse({"item": "x", "quantity": "secret-token-123"})
    assert "secret-token-123" not in caught.value.message
