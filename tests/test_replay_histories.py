"""Replay every recorded history (tests/histories/<WorkflowType>/*.json) with the workers'
current workflow code: a change that would break runs in flight fails here, naming the
workflow, the history file and the event where the new code decided differently.

Histories come from `make record-histories` (tests/history_recording.py) run on released
code, and are kept while runs of that code can still exist. A change that alters the
commands of a running workflow goes behind `workflow.patched()` (docs/deployment.md).
The replayer uses the encrypting data converter, so the committed plaintext histories also
prove that payloads written before encryption was turned on still decode.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from temporal_gateway.codec import data_converter, new_key_entry
from workers.temporal import registry
from workers.temporal.worker import MonitoringInterceptor, workflow_runner

HISTORIES = Path(__file__).parent / "histories"
ROOT = Path(__file__).parent.parent
RECORDED = sorted(HISTORIES.glob("*/*.json"))


class ReplayFailed(AssertionError):
    pass


@dataclass(frozen=True)
class Recorded:
    path: Path
    history: WorkflowHistory

    @property
    def workflow_type(self) -> str:
        return self.path.parent.name


def load(path: Path) -> Recorded:
    return Recorded(path, WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text()))


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def describe_event(event: HistoryEvent) -> str:
    """`event 22 (ActivityTaskScheduled: activity charge_subscription)` for a message."""
    kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    name = "".join(p.capitalize() for p in kind.split("_"))
    detail = ""
    if event.HasField("activity_task_scheduled_event_attributes"):
        detail = f": activity {event.activity_task_scheduled_event_attributes.activity_type.name}"
    elif event.HasField("timer_started_event_attributes"):
        detail = f": timer {event.timer_started_event_attributes.timer_id}"
    elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        detail = f": child {attrs.workflow_type.name}"
    elif event.HasField("marker_recorded_event_attributes"):
        detail = f": marker {event.marker_recorded_event_attributes.marker_name}"
    return f"event {event.event_id} ({name}{detail})"


@functools.cache
def _replayer() -> Replayer:
    # Encryption on: these plaintext histories must still decode (pass-through).
    converter = data_converter({"PAYLOAD_KEYS": new_key_entry("replay")})
    return Replayer(
        workflows=[w.cls for w in registry.all_workflows()],
        interceptors=[MonitoringInterceptor()],
        data_converter=converter,
        # The workers' own runner: their passed-through modules, no context questions.
        workflow_runner=workflow_runner(converter),
    )


async def _fails(replayer: Replayer, recorded: Recorded, events: int) -> BaseException | None:
    history = WorkflowHistory(recorded.history.workflow_id, recorded.history.events[:events])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    return result.replay_failure


async def _first_failing_event(replayer: Replayer, recorded: Recorded) -> HistoryEvent | None:
    """The event where replay first goes wrong, found by replaying shorter prefixes (used
    when the SDK's message does not name it)."""
    low, high = 1, len(recorded.history.events)  # the full history fails
    while low < high:
        middle = (low + high) // 2
        if await _fails(replayer, recorded, middle):
            high = middle
        else:
            low = middle + 1
    return recorded.history.events[low - 1] if low else None


async def replay(recorded: Recorded, replayer: Replayer | None = None) -> None:
    """Replay one history; raise ReplayFailed naming the workflow, file and event."""
    replayer = replayer or _replayer()
    result = await replayer.replay_workflow(recorded.history, raise_on_replay_failure=False)
    failure = result.replay_failure
    if failure is None:
        return
    message = str(failure)
    events = {e.event_id: e for e in recorded.history.events}
    found = re.search(r"HistoryEvent\(id: (\d+)", message) or re.search(
        r"event[ _]id:? (\d+)", message
    )
    event = events.get(int(found.group(1))) if found else None
    if event is None:
        event = await _first_failing_event(replayer, recorded)
    where = describe_event(event) if event is not None else "an unknown event"
    reason = re.search(r'message: "([^"]+)"', message)
    raise ReplayFailed(
        f"{recorded.workflow_type} no longer replays {_shown(recorded.path)} at "
        f"{where}: {reason.group(1) if reason else message[:500]}. The change alters what "
        "running workflows do; guard it with workflow.patched() (docs/deployment.md)."
    ) from failure


def test_every_registered_workflow_has_a_recorded_history():
    covered = {p.parent.name for p in RECORDED}
    missing = sorted(w.name for w in registry.all_workflows() if w.name not in covered)
    assert not missing, f"no recorded history for {missing}: run `make record-histories`"
    unknown = sorted(covered - {w.name for w in registry.all_workflows()})
    assert not unknown, f"histories of workflows that are not registered: {unknown}"


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_history_replays_with_current_code(path):
    recorded = load(path)
    assert (
        recorded.history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        == recorded.workflow_type
    )
    await replay(recorded)
