"""Monitoring: alarms on the poller and on job outcomes, and the job-flow dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentjobs.metrics import JOB_OUTCOME_METRICS, Metric
from infra.poller import METRICS_NAMESPACE, SERVICE_NAME, Poller

PERIOD = Duration.minutes(5)

ALARMING_JOB_METRICS = {
    Metric.JOBS_FAILED: "A job ended FAILED.",
    Metric.JOBS_LOST: "A job was LOST: its session was recycled before it stored an outcome.",
    Metric.JOBS_TIMED_OUT: "A job ran past its deadline and was marked TIMED_OUT.",
    Metric.JOBS_OVERDUE: "A RUNNING job is past its deadline and a poller tick could not move it "
    "on.",
    Metric.RECORDS_REFUSED: "The job table refused a job's record as its agent answered it (too "
    "large or not encodable); the job ended FAILED with RECORD_REFUSED.",
    Metric.NOTIFICATIONS_REFUSED: "SNS refused every form of a job's notification; the job was "
    "closed without one (notify_error NOTIFY_REFUSED).",
    Metric.EVENTS_DROPPED: "The history table refused or could not take a job's event; the job "
    "went on, but `agentjobs events` misses that step.",
}
"""Custom metrics the poller emits (namespace AgentJobs, dimension service=poller) whose
any non-zero sum in a period needs an operator's look."""


@dataclass(frozen=True)
class MonitoringProps:
    """What is watched and where alarms go."""

    poller: Poller
    alarm_topic: sns.ITopic
    completion_dead_letters: sqs.IQueue | None = None


def job_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    """A metric the poller publishes through Powertools (dimension service=poller)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        # A plain str: jsii passes an Enum member as an enum reference, not its value.
        metric_name=str(name),
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=PERIOD,
    )


class Monitoring(Construct):
    """Alarms that publish to the alarm topic, and one dashboard of the job flow."""

    def __init__(self, scope: Construct, construct_id: str, *, props: MonitoringProps) -> None:
        super().__init__(scope, construct_id)
        fn = props.poller.function
        self._action = actions.SnsAction(props.alarm_topic)
        self._alarm_names: list[str] = []
        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm(
                "PollerErrors",
                fn.metric_errors(period=PERIOD),
                "The poller Lambda failed in 2 of the last 3 periods: jobs are not being "
                "collected or notified.",
                evaluation_periods=3,
                datapoints_to_alarm=2,
            ),
            self._alarm(
                "PollerNotRunning",
                fn.metric_invocations(period=PERIOD),
                "The poller has not run for 15 minutes: the schedule is disabled or failing.",
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                threshold=1,
                evaluation_periods=3,
                missing=cloudwatch.TreatMissingData.BREACHING,
            ),
            self._alarm(
                "DeadLetters",
                props.poller.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                "Scheduler could not invoke the poller after its retries; see the "
                "dead-letter queue.",
            ),
        ]
        if props.completion_dead_letters is not None:
            self.alarms.append(
                self._alarm(
                    "CompletionSignalsDeadLettered",
                    props.completion_dead_letters.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    ),
                    "The poller failed on completion signals several times: their jobs are "
                    "still collected by the schedule, but notified up to a period late; see "
                    "the poller's logs and the signals' dead-letter queue.",
                )
            )
        for name, description in ALARMING_JOB_METRICS.items():
            self.alarms.append(self._alarm(str(name), job_metric(name), description))
        self.dashboard = self._dashboard(props.poller)

    @property
    def alarm_arns(self) -> list[str]:
        """Every alarm's ARN, built from its name (no reference to the alarm resource)."""
        stack = Stack.of(self)
        return [
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            for name in self._alarm_names
        ]

    @property
    def dashboard_url(self) -> str:
        """The dashboard in the CloudWatch console of the stack's region."""
        region = Aws.REGION
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
        threshold: float = 0,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        # Named, so the alarm topic and its key can name exactly these alarms as the only
        # sources CloudWatch may publish for; stack names are unique in a region.
        name = f"{Stack.of(self).stack_name}-{construct_id}"
        self._alarm_names.append(name)
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            metric=metric,
            alarm_description=f"agentjobs: {description}",
            comparison_operator=comparison,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._action)
        return alarm

    def _dashboard(self, poller: Poller) -> cloudwatch.Dashboard:
        fn, dlq = poller.function, poller.dead_letter_queue
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs finished, by status",
                left=[job_metric(name) for name in JOB_OUTCOME_METRICS],
                stacked=True,
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Poller work",
                left=[job_metric(Metric.JOBS_POLLED), job_metric(Metric.NOTIFICATIONS_SENT)],
                right=[job_metric(Metric.JOBS_OVERDUE)],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Tick duration (ms)",
                left=[
                    job_metric(Metric.TICK_DURATION_MS, "Average"),
                    job_metric(Metric.TICK_DURATION_MS, "Maximum"),
                ],
                right=[fn.metric_duration(period=PERIOD, statistic="Maximum")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    job_metric(Metric.POLL_ERRORS),
                    fn.metric_errors(period=PERIOD),
                    fn.metric_throttles(period=PERIOD),
                ],
                right=[
                    dlq.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    )
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24)
        )
        return dashboard
