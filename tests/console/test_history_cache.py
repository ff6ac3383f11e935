"""The run page's history cache: what it asks Temporal for, with a stand-in gateway."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from dashboard.views.runs import HistoryCache
from temporal_gateway.gateway import RunInfo


def _event(event_id: int, signal: str = "tick") -> HistoryEvent:
    event = HistoryEvent(
        event_id=event_id, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )
    event.workflow_execution_signaled_event_attributes.signal_name = signal
    event.event_time.FromSeconds(1_700_000_000 + event_id)
    return event


@dataclass
class StandInGateway:
    """Serves a growing history; `reverse` says whether it can read it backwards."""

    events: list[HistoryEvent]
    reverse: bool = True
    page_size: int = 3
    forward_calls: int = 0
    reverse_calls: int = 0

    def history_events(self, workflow_id, run_id, *, next_page_token=b"", page_size=1000):
        self.forward_calls += 1
        start = int(next_page_token or b"0")
        page = self.events[start : start + self.page_size]
        more = start + self.page_size < len(self.events)
        return page, str(start + self.page_size).encode() if more else b""

    def newest_history_events(self, workflow_id, run_id, *, after_event_id, expected):
        if not self.reverse:
            return None
        self.reverse_calls += 1
        return [e for e in self.events if e.event_id > after_event_id]


def _run(length: int) -> RunInfo:
    return RunInfo(
        "wf-1", "run-1", "ReadSideTestWorkflow", "Running", "q", None, None, None, length,
        None, None, None, None,
    )  # fmt: skip


def test_new_events_are_read_from_the_end_and_each_counted_once(app):
    gw = StandInGateway([_event(n) for n in range(1, 8)])
    cache = HistoryCache()
    with app.test_request_context():
        app.extensions["temporal"], saved = gw, app.extensions["temporal"]
        try:
            timeline, _ = cache.timeline(_run(7))
            assert timeline.event_count == 7 and gw.forward_calls == 3
            cache.timeline(_run(7))
            assert gw.forward_calls == 3 and gw.reverse_calls == 0  # nothing new, no call
            gw.events += [_event(8, "late"), _event(9, "later")]
            timeline, _ = cache.timeline(_run(9))
            assert gw.reverse_calls == 1 and gw.forward_calls == 3
            assert timeline.event_count == 9
            assert [s.name for s in timeline.signals][-2:] == ["late", "later"]
        finally:
            app.extensions["temporal"] = saved


def test_a_server_without_reverse_history_is_read_forward_without_counting_twice(app):
    gw = StandInGateway([_event(n) for n in range(1, 5)], reverse=False)
    cache = HistoryCache()
    with app.test_request_context():
        app.extensions["temporal"], saved = gw, app.extensions["temporal"]
        try:
            cache.timeline(_run(4))
            gw.events += [_event(5), _event(6)]
            timeline, _ = cache.timeline(_run(6))
            assert timeline.event_count == 6  # the first four are not added again
            assert len(timeline.signals) == 6
        finally:
            app.extensions["temporal"] = saved
