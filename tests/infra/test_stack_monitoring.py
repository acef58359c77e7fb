"""The monitoring in the template: alarms on job outcomes and poller health, the dashboard."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synth
from tests.infra.template import (
    getatt,
    ref,
)

JOB_ALARM_METRICS = ("JobsFailed", "JobsLost", "JobsTimedOut", "JobsOverdue")
DASHBOARD_METRICS = (
    "JobsPolled",
    "JobsSucceeded",
    "JobsFailed",
    "JobsCancelled",
    "JobsTimedOut",
    "JobsLost",
    "NotificationsSent",
    "TickDurationMs",
    "PollErrors",
)


@pytest.mark.parametrize("metric", JOB_ALARM_METRICS)
def test_job_outcome_alarm_fires_on_any_in_a_period(
    default_synth: Synth, ids: dict[str, str], metric: str
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AgentJobs",
            "MetricName": metric,
            "Dimensions": [{"Name": "service", "Value": "poller"}],
            "Statistic": "Sum",
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )


def test_poller_errors_and_dead_letters_alarm_to_the_alarm_topic(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    template = default_synth.template
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": ref(ids["function"])}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": getatt(ids["queue"], "QueueName")}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )


def test_dead_lettered_completion_signals_alarm_to_the_alarm_topic(
    default_synth: Synth, ids: dict[str, str]
) -> None:
    default_synth.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": getatt(ids["signal_dlq"], "QueueName")}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "AlarmActions": [ref(ids["alarm_topic"])],
        },
    )


def test_every_alarm_notifies_the_alarm_topic(default_synth: Synth, ids: dict[str, str]) -> None:
    alarms = default_synth.template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [ref(ids["alarm_topic"])]


def test_dashboard_charts_the_job_flow(default_synth: Synth) -> None:
    dashboards = default_synth.template.find_resources("AWS::CloudWatch::Dashboard")
    (dashboard,) = dashboards.values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in DASHBOARD_METRICS:
        assert f'\\"{metric}\\"' in body, metric
    assert '\\"AgentJobs\\"' in body
