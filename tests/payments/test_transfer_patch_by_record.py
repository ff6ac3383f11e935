"""How a payout run decides whether `transfer_payout` marks the payout processing: new runs
read it from their `create_payout` result (`PayoutRecord.transfer_marks_processing`) and
record no patch marker and no `TemporalChangeVersion` upsert; runs recorded by older code
(with the `payout-transfer-marks-processing` marker, or from before it with the separate
`set_payout_status` activity) still replay, because for them the field is missing and the
patch decides as it did."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from tests.conftest import running_workers
from tests.payments.helpers import payout_input, start_payout
from tests.test_replay_histories import Recorded, load, replay
from workers.payments.payout_settlement import TRANSFER_MARKS_PROCESSING_PATCH

HISTORIES = Path(__file__).parent.parent / "histories" / "PractitionerPayoutWorkflow"
WITH_MARKER = "payout_workflow--test_below_threshold_pays_without_approval.json"
BEFORE_PATCH = "payout_workflow--test_below_threshold_pays_without_approval--before-issue-15.json"


def _event_types(history) -> list[int]:
    return [e.event_type for e in history.events]


def _activities(history) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def _patch_markers(history) -> int:
    return sum(
        TRANSFER_MARKS_PROCESSING_PATCH.encode()
        in e.marker_recorded_event_attributes.SerializeToString()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    )


async def test_new_runs_record_no_patch_marker_and_replay(app, money, time_env):
    pid = money.practitioner(balance=12_345)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.status == "paid"
    assert _activities(history) == ["create_payout", "transfer_payout", "notify_payout"]
    types = _event_types(history)
    assert EventType.EVENT_TYPE_MARKER_RECORDED not in types
    assert EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES not in types
    assert money.transfers() == 1 and money.ledger_ok()
    await replay(Recorded(Path("new-run.json"), history))


@pytest.mark.parametrize(
    ("name", "markers", "first_activities"),
    [
        (WITH_MARKER, 1, ["create_payout", "transfer_payout"]),
        (BEFORE_PATCH, 0, ["create_payout", "set_payout_status", "transfer_payout"]),
    ],
)
async def test_runs_recorded_by_older_code_still_replay(name, markers, first_activities):
    recorded = load(HISTORIES / name)
    assert _patch_markers(recorded.history) == markers
    assert _activities(recorded.history)[: len(first_activities)] == first_activities
    await replay(recorded)
