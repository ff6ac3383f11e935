"""`run_info` reads a run straight from its visibility record (temporal_gateway/records.py):
the same values the SDK's typed decoding gives, for the fields the console shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload, SearchAttributes, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.converter import decode_typed_search_attributes, encode_search_attributes

from estuary.contracts.search_attributes import (
    ENTITY_ID,
    ENTITY_TYPE,
    ESTUARY_DOMAIN,
    TRIGGERED_BY,
    run_attributes,
)
from temporal_gateway.records import run_info

STARTED = datetime(2026, 12, 2, 9, 30, 15, 250000, tzinfo=UTC)


def _timestamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _info(**fields) -> WorkflowExecutionInfo:
    return WorkflowExecutionInfo(
        execution=WorkflowExecution(workflow_id="payout-7", run_id="run-a"),
        type=WorkflowType(name="PractitionerPayoutWorkflow"),
        task_queue="payments",
        history_length=11,
        **fields,
    )


def _json_keyword(value: object) -> Payload:
    return Payload(
        metadata={"encoding": b"json/plain", "type": b"Keyword"}, data=json.dumps(value).encode()
    )


def test_a_running_run_reads_as_the_sdk_decodes_it():
    attrs = SearchAttributes()
    encode_search_attributes(run_attributes("payments", "practitioner", 7, "staff:3"), attrs)
    info = _info(
        status=WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
        start_time=_timestamp(STARTED),
        execution_time=_timestamp(STARTED),
        search_attributes=attrs,
        parent_execution=WorkflowExecution(workflow_id="batch-1", run_id="run-p"),
    )

    run = run_info(info)

    typed = decode_typed_search_attributes(info.search_attributes)
    assert (
        (run.domain, run.entity_type, run.entity_id, run.triggered_by)
        == (
            typed.get(ESTUARY_DOMAIN),
            typed.get(ENTITY_TYPE),
            typed.get(ENTITY_ID),
            typed.get(TRIGGERED_BY),
        )
        == ("payments", "practitioner", "7", "staff:3")
    )
    assert run.workflow_id == "payout-7" and run.run_id == "run-a"
    assert run.workflow_type == "PractitionerPayoutWorkflow"
    assert run.status == "Running" and run.is_running
    assert run.task_queue == "payments" and run.history_length == 11
    assert run.start_time == STARTED and run.start_time.tzinfo is UTC
    assert run.execution_time == STARTED
    assert run.close_time is None
    assert run.parent_workflow_id == "batch-1"


def test_a_closed_run_has_its_close_time_and_status():
    closed = datetime(2026, 12, 2, 9, 31, tzinfo=UTC)
    run = run_info(
        _info(
            status=WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
            start_time=_timestamp(STARTED),
            close_time=_timestamp(closed),
        )
    )
    assert run.status == "TimedOut" and not run.is_running
    assert run.close_time == closed
    assert run.parent_workflow_id is None
    # A run started without the console's search attributes: nothing to show, no error.
    assert (run.domain, run.entity_type, run.entity_id, run.triggered_by) == (None,) * 4


def test_an_unspecified_status_and_missing_times_read_as_unknown_and_none():
    run = run_info(_info())
    assert run.status == "Unknown"
    assert run.start_time is None and run.execution_time is None and run.close_time is None


def test_a_keyword_in_another_shape_is_unwrapped_from_a_list_of_one_or_else_none():
    attrs = SearchAttributes(
        indexed_fields={
            # An older server's encoding: a list of one value is that value.
            ESTUARY_DOMAIN.name: _json_keyword(["bookings"]),
            # A list of several is not one keyword: the typed decoding drops it.
            ENTITY_TYPE.name: _json_keyword(["booking", "practitioner"]),
            # Not a string at all (the typed decoding would pass the number through;
            # RunInfo's fields are strings or None).
            ENTITY_ID.name: _json_keyword(14),
            # Another encoding than JSON goes through the SDK's converter.
            TRIGGERED_BY.name: Payload(
                metadata={"encoding": b"binary/plain", "type": b"Keyword"}, data=b"staff:9"
            ),
        }
    )
    run = run_info(_info(search_attributes=attrs))
    assert run.domain == "bookings"
    assert run.entity_type is None
    assert run.entity_id is None
    # binary/plain decodes to bytes, not a keyword string.
    assert run.triggered_by is None
