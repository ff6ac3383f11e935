"""How the run page reads a run from Temporal, and what this console process remembers
of each run it has shown (`RunHistories.look`).

The first look at a run: `describe` (state, memo, pending activities), then its whole
history, page by page, summarised as it arrives (the next page is fetched while this one
is summarised) with the `progress` query asked beside it. The gateway reads the
pages one after the other on its own loop while they are summarised here. A long history
is read from both ends at once, the first half forward and the second half backwards
from the end: most of a history read's time is the server's, and this spends it twice
in parallel.

A later look at a run that was running (the live refresh every 2 s, a reload) makes at
most two Temporal calls:

1. the events after the last one seen, read from the end of the history backwards
   (`GetWorkflowExecutionHistoryReverse`, one short page in the usual case). It says
   whether anything happened at all, the run closing included;
2. at most one more, the one that is stale:
   - the run closed: `describe`, for its final state;
   - a workflow task completed since progress was last answered (only then can the
     workflow's state have changed): the `progress` query;
   - activities are open: `describe`, for their attempts and last failure, which change
     without any new event (Temporal does not write retries to the history).
   When progress and the open activities are both stale, they take turns.
   Between two `describe`s the run's state is the last one described, with the history
   length and the open activities brought up to date from the events read since.

A closed run never changes: once its whole history is read, a reload of it makes no
Temporal call at all. A server without reverse history (the time-skipping test server)
gets `describe` and a forward read of what is new. Each console process has its own
memory of at most `size` runs, the least recently looked at forgotten first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType

from dashboard.presentation.history import ActivityRow, Timeline, TimelineBuilder
from estuary.contracts.spec import PROGRESS_QUERY
from temporal_gateway.cache import LRUMap
from temporal_gateway.gateway import GatewayError, NoWorkerAnswered, RunInfo, TemporalGateway

HISTORY_PAGE_SIZE = 1000
# The first reverse page of a poll: most polls find a handful of new events, or none.
POLL_PAGE_SIZE = 50
PROGRESS_QUERY_SECONDS = 3
_TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
_OPEN = ("scheduled", "started")


@dataclass
class RunLook:
    """What the run page shows of a run, and what could not be read."""

    run: RunInfo
    timeline: Timeline | None
    progress: Any = None
    progress_problem: str | None = None
    history_problem: GatewayError | None = None  # the timeline could not be read

    @property
    def version(self) -> str:
        """Changes whenever anything the run's live view shows changes: a live refresh
        that finds the version its page already has need not send the view again."""
        shown = [
            self.run.status,
            self.run.history_length,
            self.run.pending_activities,
            self.progress,
            self.progress_problem,
            self.history_problem.message if self.history_problem else None,
        ]
        text = json.dumps(shown, sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class _Seen:
    """What this process has read of one run."""

    builder: TimelineBuilder = field(default_factory=TimelineBuilder)
    last_event_id: int = 0
    run: RunInfo | None = None  # as last described, brought up to date by events
    progress: Any = None
    progress_problem: str | None = None
    progress_stale: bool = True  # a workflow task completed since the last answer
    asked_progress_last: bool = False
    reverse: bool = True  # False once the server said it has no reverse history
    lock: threading.Lock = field(default_factory=threading.Lock)


class RunHistories:
    """Runs looked at by this process, least recently looked at forgotten first."""

    def __init__(self, size: int = 64) -> None:
        self._runs: LRUMap[_Seen] = LRUMap(size)
        # The next history page fetched while this one is summarised; the progress
        # query beside the first look's history read.
        self._beside = ThreadPoolExecutor(max_workers=8, thread_name_prefix="run-history")

    def clear(self) -> None:
        self._runs.clear()

    def _entry(self, gw: TemporalGateway, workflow_id: str, run_id: str) -> _Seen:
        return self._runs.get_or_put((id(gw), workflow_id, run_id), _Seen)

    def look(self, gw: TemporalGateway, workflow_id: str, run_id: str) -> RunLook:
        """The run as the page shows it. Raises the gateway's errors when the run itself
        cannot be read (not found, Temporal unreachable); a history or progress that
        cannot be read is reported in the answer instead."""
        entry = self._entry(gw, workflow_id, run_id)
        with entry.lock:
            known = entry.run
            closed = known is not None and not known.is_running
            if closed and entry.last_event_id >= known.history_length:  # all read
                return RunLook(known, entry.builder.finish())
            if known is not None and known.is_running and entry.reverse:
                look = self._poll(gw, entry)
                if look is not None:
                    return look
            return self._first_look(gw, entry, workflow_id, run_id)

    # --- a run not seen running before (or a server without reverse history) ----------

    def _first_look(self, gw: TemporalGateway, entry: _Seen, wid: str, rid: str) -> RunLook:
        run = gw.describe(wid, rid)
        asked: Future | None = None
        if run.is_running and (entry.progress_stale or entry.last_event_id != run.history_length):
            asked = self._beside.submit(
                gw.query, wid, PROGRESS_QUERY, rid, timeout_seconds=PROGRESS_QUERY_SECONDS
            )
        problem: GatewayError | None = None
        try:
            self._catch_up(gw, run, entry)
        except GatewayError as exc:
            problem = exc
        if asked is not None:
            self._take_progress(entry, asked.result)
        entry.run = run
        timeline = entry.builder.finish() if problem is None else None
        return RunLook(run, timeline, *self._progress(entry, run), problem)

    def _catch_up(self, gw: TemporalGateway, run: RunInfo, entry: _Seen) -> None:
        unseen = run.history_length - entry.last_event_id
        if unseen <= 0:
            return
        if entry.last_event_id and entry.reverse:
            fresh = gw.newest_history_events(
                run.workflow_id,
                run.run_id,
                after_event_id=entry.last_event_id,
                expected=unseen,
            )
            if fresh is not None:
                self._add(entry, fresh)
                return
            entry.reverse = False
        if entry.last_event_id == 0 and entry.reverse and unseen > 2 * HISTORY_PAGE_SIZE:
            self._read_from_both_ends(gw, run, entry)
            return
        self._read_forward(gw, run, entry)

    def _read_from_both_ends(self, gw: TemporalGateway, run: RunInfo, entry: _Seen) -> None:
        """A long history's first read: the events after `middle` backwards from the end
        (one gateway call, on another thread) while the first half is read forward here."""
        pages = -(-run.history_length // (2 * HISTORY_PAGE_SIZE))  # forward pages, rounded up
        middle = pages * HISTORY_PAGE_SIZE
        second_half: Future = self._beside.submit(
            gw.newest_history_events,
            run.workflow_id,
            run.run_id,
            after_event_id=middle,
            expected=HISTORY_PAGE_SIZE,
        )
        self._read_forward(gw, run, entry, until_event_id=middle)
        fresh = second_half.result()
        if fresh is None:  # no reverse history after all: the rest forward (seen skipped)
            entry.reverse = False
            self._read_forward(gw, run, entry)
            return
        self._add(entry, fresh)

    def _read_forward(
        self, gw: TemporalGateway, run: RunInfo, entry: _Seen, *, until_event_id: int | None = None
    ) -> None:
        """The history from its start to its end (or past `until_event_id`), adding what
        was not seen yet, each page as it arrives while the gateway reads the next."""
        for events in gw.history_pages(
            run.workflow_id,
            run.run_id,
            page_size=HISTORY_PAGE_SIZE,
            until_event_id=until_event_id,
        ):
            self._add(entry, events)

    # --- a run seen running: at most two calls --------------------------------------

    def _poll(self, gw: TemporalGateway, entry: _Seen) -> RunLook | None:
        known = entry.run
        assert known is not None
        fresh = gw.newest_history_events(
            known.workflow_id,
            known.run_id,
            after_event_id=entry.last_event_id,
            expected=POLL_PAGE_SIZE,
        )
        if fresh is None:  # no reverse history here: describe + forward read instead
            entry.reverse = False
            return None
        self._add(entry, fresh)
        timeline = entry.builder.finish()
        if timeline.close_label is not None:  # closed: its final state, and nothing else
            entry.run = gw.describe(known.workflow_id, known.run_id)
            return RunLook(entry.run, timeline)

        open_activities = [a for a in timeline.activities if a.status in _OPEN]
        want_progress = entry.progress_stale
        want_describe = bool(open_activities)
        if want_progress and want_describe:  # take turns
            want_progress = not entry.asked_progress_last
            want_describe = not want_progress
        if want_describe:
            entry.run = gw.describe(known.workflow_id, known.run_id)
        else:
            entry.run = dataclasses.replace(
                known,
                history_length=entry.last_event_id,
                pending_activities=_still_pending(known.pending_activities, open_activities),
            )
        if want_progress:
            wid, rid = known.workflow_id, known.run_id
            self._take_progress(
                entry,
                lambda: gw.query(wid, PROGRESS_QUERY, rid, timeout_seconds=PROGRESS_QUERY_SECONDS),
            )
        entry.asked_progress_last = want_progress
        return RunLook(entry.run, timeline, *self._progress(entry, entry.run))

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    def _add(entry: _Seen, events: list[Any]) -> None:
        fresh = [e for e in events if e.event_id > entry.last_event_id]
        if not fresh:
            return
        entry.builder.add_all(fresh)
        entry.last_event_id = fresh[-1].event_id
        if any(e.event_type == _TASK_COMPLETED for e in fresh):
            entry.progress_stale = True

    @staticmethod
    def _take_progress(entry: _Seen, answer: Callable[[], Any]) -> None:
        try:
            entry.progress, entry.progress_problem = answer(), None
            entry.progress_stale = False
        except NoWorkerAnswered:
            # Asked again once a workflow task completes, i.e. a worker is back.
            entry.progress_problem = "no worker answered the progress query in time"
            entry.progress_stale = False
        except GatewayError as exc:
            entry.progress_problem = f"progress query failed: {exc.message}"

    @staticmethod
    def _progress(entry: _Seen, run: RunInfo) -> tuple[Any, str | None]:
        if not run.is_running:
            return None, None
        return entry.progress, entry.progress_problem


def _still_pending(described: list[dict[str, Any]], open_rows: list[ActivityRow]) -> list[dict]:
    """The pending activities as last described, without those that have closed since,
    and with those scheduled since (first attempt, as far as the events say)."""
    by_id = {str(p.get("activityId")): p for p in described}
    out = []
    for row in open_rows:
        known = by_id.get(row.activity_id)
        out.append(
            known
            or {
                "activityId": row.activity_id,
                "activityType": {"name": row.activity_type},
                "state": "PENDING_ACTIVITY_STATE_SCHEDULED",
                "attempt": 1,
            }
        )
    return out


def read_timeline(gw: TemporalGateway, workflow_id: str, run_id: str) -> Timeline:
    """A run's whole history read and summarised, remembering nothing (benchmarks)."""
    builder = TimelineBuilder()
    token = b""
    while True:
        events, token = gw.history_events(
            workflow_id, run_id, next_page_token=token, page_size=HISTORY_PAGE_SIZE
        )
        builder.add_all(events)
        if not token:
            return builder.finish()


run_histories = RunHistories()
