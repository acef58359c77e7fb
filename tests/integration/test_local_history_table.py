"""The local stack's history table: made from the shared definition next to the job table,
named to the agent, the poller and the CLI, with the runtime's session lifetime told to the
poller."""

from __future__ import annotations

from pathlib import Path

import psutil

from agentjobs import schema
from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint
from testbed.local_stack import local_stack


def test_history_table_has_the_shared_keys_and_ttl(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    ddb = moto.client("dynamodb")
    assert resources.events_table == resources.table.removesuffix("-jobs") + "-events"
    table = ddb.describe_table(TableName=resources.events_table)["Table"]
    definition = schema.events_table_definition()
    assert table["KeySchema"] == definition["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        definition["AttributeDefinitions"], key=str
    )
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=resources.events_table)["TimeToLiveDescription"]
    assert ttl == {"AttributeName": schema.TTL_ATTRIBUTE, "TimeToLiveStatus": "ENABLED"}


def test_resources_env_names_the_history_table(resources: LocalResources) -> None:
    assert resources.env()["EVENTS_TABLE"] == resources.events_table


def test_local_stack_names_the_history_table_to_agents_and_poller(tmp_path: Path) -> None:
    with local_stack(
        tmp_path, poller_interval_s=60, fastpath=False, AGENTCORE_MAX_LIFETIME_S="120"
    ) as stack:
        values = stack.values()
        events_table = values["EVENTS_TABLE"]
        assert events_table == "agentjobs-local-events"
        ddb = stack.client("dynamodb")
        keys = ddb.describe_table(TableName=events_table)["Table"]["KeySchema"]
        assert keys == schema.events_table_definition()["KeySchema"]
        # What each process really runs with: the runtime passes its environment to agents.
        runtime = psutil.Process(int(values["LOCAL_RUNTIME_PID"])).environ()
        poller = psutil.Process(int(values["POLLER_SCHEDULE_PID"])).environ()
        assert runtime["EVENTS_TABLE"] == poller["EVENTS_TABLE"] == events_table
        assert poller["POLLER_SESSION_MAX_LIFETIME_S"] == "120"
        assert runtime["AGENTCORE_MAX_LIFETIME_S"] == "120"
