"""How the run page reads a run (`dashboard.run_reader`): what it asks Temporal for on
a first look and on each live refresh, with a stand-in gateway that counts the calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from dashboard.run_reader import RunHistories
from temporal_gateway.gateway import NoWorkerAnswered, RunInfo

E = EventType
SCHEDULED: list[int] = []  # ids of the activities scheduled by `_event`, in order


def _event(event_id: int, kind: int = E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=kind)
    event.event_time.FromSeconds(1_700_000_000 + event_id)
    if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        event.workflow_execution_signaled_event_attributes.signal_name = f"tick-{event_id}"
    elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        a = event.activity_task_scheduled_event_attributes
        a.activity_id, a.activity_type.name = str(event_id), "transfer"
        SCHEDULED.append(event_id)
    elif kind == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:  # the latest activity scheduled
        event.activity_task_completed_event_attributes.scheduled_event_id = SCHEDULED[-1]
    return event


@dataclass
class StandInGateway:
    """Serves a growing history and counts each call, as the real gateway's `run` would."""

    events: list[HistoryEvent]
    reverse: bool = True
    page_size: int = 3
    status: str = "Running"
    pending: list[dict[str, Any]] = field(default_factory=list)
    worker: bool = True
    calls: list[str] = field(default_factory=list)

    def describe(self, workflow_id, run_id=None):
        self.calls.append("describe")
        return RunInfo(
            "wf-1", "run-1", "ReadSideTestWorkflow", self.status, "q", None, None, None,
            len(self.events), None, None, None, None, pending_activities=list(self.pending),
        )  # fmt: skip

    def history_events(self, workflow_id, run_id, *, next_page_token=b"", page_size=1000):
        self.calls.append("history")
        start = int(next_page_token or b"0")
        page = self.events[start : start + self.page_size]
        more = start + self.page_size < len(self.events)
        return page, str(start + self.page_size).encode() if more else b""

    def history_pages(self, workflow_id, run_id, *, page_size=1000, until_event_id=None):
        token = b""
        while True:
            events, token = self.history_events(workflow_id, run_id, next_page_token=token)
            yield events
            if not token or (until_event_id is not None and events[-1].event_id >= until_event_id):
                return

    def newest_history_events(self, workflow_id, run_id, *, after_event_id, expected):
        if not self.reverse:
            return None
        self.calls.append("reverse")
        return [e for e in self.events if e.event_id > after_event_id]

    def query(self, workflow_id, name, run_id=None, *, timeout_seconds=None):
        self.calls.append("query")
        if not self.worker:
            raise NoWorkerAnswered("no worker")
        return {"stage": f"at {len(self.events)}"}

    def grow(self, *kinds: int) -> None:
        for kind in kinds:
            self.events.append(_event(len(self.events) + 1, kind))


TASK_DONE = (
    E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
)


def _look(histories: RunHistories, gw: StandInGateway):
    gw.calls.clear()
    return histories.look(gw, "wf-1", "run-1")  # type: ignore[arg-type]


def test_a_first_look_reads_everything_and_a_quiet_poll_costs_one_call():
    gw = StandInGateway([_event(n) for n in range(1, 8)])
    histories = RunHistories()
    look = _look(histories, gw)
    assert look.timeline.event_count == 7
    assert sorted(gw.calls) == ["describe", "history", "history", "history", "query"]
    assert look.progress == {"stage": "at 7"}

    look = _look(histories, gw)  # nothing happened
    assert gw.calls == ["reverse"]
    assert look.timeline.event_count == 7 and look.progress == {"stage": "at 7"}


def test_new_events_cost_the_events_and_the_progress_query_only():
    gw = StandInGateway([_event(n) for n in range(1, 5)])
    histories = RunHistories()
    _look(histories, gw)
    gw.grow(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, *TASK_DONE)
    look = _look(histories, gw)
    assert gw.calls == ["reverse", "query"]
    assert look.timeline.event_count == 8 and look.run.history_length == 8
    assert look.progress == {"stage": "at 8"}
    assert [s.name for s in look.timeline.signals][-1] == "tick-5"

    gw.grow(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)  # no workflow task ran: same state
    look = _look(histories, gw)
    assert gw.calls == ["reverse"] and look.progress == {"stage": "at 8"}


def test_open_activities_are_described_and_take_turns_with_progress():
    gw = StandInGateway([_event(1), _event(2)])
    histories = RunHistories()
    _look(histories, gw)
    gw.grow(*TASK_DONE, E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    gw.pending = [{"activityId": "6", "activityType": {"name": "transfer"}, "attempt": 4}]

    first = _look(histories, gw)  # progress and activities both stale: progress first
    assert gw.calls == ["reverse", "query"]
    assert [p["activityId"] for p in first.run.pending_activities] == ["6"]
    assert first.run.pending_activities[0]["attempt"] == 1  # as far as the events say

    second = _look(histories, gw)  # quiet: the retrying activity's real state
    assert gw.calls == ["reverse", "describe"]
    assert second.run.pending_activities[0]["attempt"] == 4

    gw.grow(*TASK_DONE)
    _look(histories, gw)  # both stale again, and it is progress's turn
    assert gw.calls == ["reverse", "query"]

    gw.grow(E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)  # activity 6 closes; no workflow task
    gw.pending = []
    fourth = _look(histories, gw)
    assert gw.calls == ["reverse"] and fourth.run.pending_activities == []


def test_a_run_that_closes_is_described_once_and_then_never_asked_about_again():
    gw = StandInGateway([_event(1), _event(2)])
    histories = RunHistories()
    _look(histories, gw)
    gw.grow(*TASK_DONE, E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
    gw.status = "Completed"
    look = _look(histories, gw)
    assert gw.calls == ["reverse", "describe"]
    assert look.run.status == "Completed" and look.timeline.close_label == "Completed"
    assert look.progress is None

    look = _look(histories, gw)  # a reload of the closed run
    assert gw.calls == [] and look.timeline.event_count == 6


def test_no_worker_for_progress_is_said_once_and_not_asked_again_until_a_task_runs():
    gw = StandInGateway([_event(1)], worker=False)
    histories = RunHistories()
    look = _look(histories, gw)
    assert look.progress is None and "no worker" in look.progress_problem
    gw.grow(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    look = _look(histories, gw)
    assert gw.calls == ["reverse"] and "no worker" in look.progress_problem
    gw.worker = True
    gw.grow(*TASK_DONE)
    look = _look(histories, gw)
    assert gw.calls == ["reverse", "query"] and look.progress == {"stage": "at 5"}


def test_a_server_without_reverse_history_is_read_forward_without_counting_twice():
    gw = StandInGateway([_event(n) for n in range(1, 5)], reverse=False)
    histories = RunHistories()
    _look(histories, gw)
    gw.grow(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    look = _look(histories, gw)
    assert gw.calls[0] == "describe" and "history" in gw.calls
    assert look.timeline.event_count == 6  # the first four are not added again
    assert len(look.timeline.signals) == 6


def test_a_long_history_is_read_from_both_ends_once_each(monkeypatch):
    from dashboard import run_reader as run_history

    monkeypatch.setattr(run_history, "HISTORY_PAGE_SIZE", 3)
    gw = StandInGateway([_event(n) for n in range(1, 21)])  # pages of 3: 7 forward pages
    look = _look(RunHistories(), gw)
    assert look.timeline.event_count == 20
    assert [s.event_id for s in look.timeline.signals] == list(range(1, 21))
    assert gw.calls.count("reverse") == 1 and gw.calls.count("history") == 4  # to event 12


def test_both_ends_without_reverse_history_reads_forward_on(monkeypatch):
    from dashboard import run_reader as run_history

    monkeypatch.setattr(run_history, "HISTORY_PAGE_SIZE", 3)
    gw = StandInGateway([_event(n) for n in range(1, 21)], reverse=False)
    look = _look(RunHistories(), gw)
    assert [s.event_id for s in look.timeline.signals] == list(range(1, 21))
    assert gw.calls.count("history") == 4 + 7  # to the middle, then from the start on
