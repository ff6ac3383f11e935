"""Runs: the visibility list with filters, and each run's detail.

The list makes a fixed number of Temporal calls whatever the page size (one page of runs
plus one grouped status count); filters live in the URL so a view can be shared. Rows
that are running refresh themselves by htmx (one call for all of them) until none runs.
The detail page summarises the history on the server (`dashboard.presentation.history`) and
refreshes itself while the run is open; the raw events sit behind a paginated view and a
JSON download.
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import select
from werkzeug.routing import BuildError

from dashboard import visibility
from dashboard.permissions import require
from dashboard.presentation.history import Timeline, TimelineBuilder
from dashboard.run_actions import bulk_retry as run_bulk_retry
from dashboard.run_actions import control, handler_forms
from dashboard.run_actions import retry as run_retry
from dashboard.writes import guard
from estuary.contracts import catalogue as registry
from estuary.contracts.inputs import is_id_text, query_int
from estuary.db import db
from estuary.models import Payout
from temporal_gateway.access import gateway
from temporal_gateway.gateway import (
    GatewayError,
    RunInfo,
    RunNotFound,
    TemporalUnavailable,
    event_type_name,
    run_ui_url,
)

bp = Blueprint("runs", __name__, url_prefix="/runs")

T = TypeVar("T")
# Workflow ids reach Temporal only as a request field (never inside a query), but we still
# refuse control characters and absurd lengths before asking.
WORKFLOW_ID_RE = re.compile(r"^[^\x00-\x1f\x7f/]{1,255}$")
HISTORY_PAGE_SIZE = 1000
EVENTS_PAGE_SIZE = 100
LIVE_MAX_ROWS = 100
MAX_PAGE_NUMBER = 100_000
PROGRESS_QUERY_SECONDS = 3


# --- helpers shared by the read pages ----------------------------------------------------


def temporal(fn: Callable[..., T], *args: Any, default: Any = None, **kwargs: Any) -> T | Any:
    """Call the gateway; on failure remember why (for the page's banner) and return default.

    Once Temporal was found unreachable in a request, later calls in it are skipped, so a
    page with several Temporal parts waits for the timeout once, not once per part.
    """
    if g.get("temporal_unreachable"):
        return default
    try:
        return fn(*args, **kwargs)
    except TemporalUnavailable as exc:
        g.temporal_unreachable = exc.message
        return default
    except GatewayError as exc:
        g.setdefault("temporal_errors", []).append(exc.message)
        return default


def console_scope() -> str:
    """Visibility scope: runs on this console's task queues (its prefix), if it has one."""
    prefix = gateway().prefix
    if not prefix:
        return ""
    return f"TaskQueue STARTS_WITH {visibility.quote(prefix)}"


@bp.app_context_processor
def read_helpers() -> dict[str, Any]:
    def endpoint_url(endpoint: str, **values: Any) -> str | None:
        """The URL of an endpoint if that page exists (another engineer's pages land later)."""
        if endpoint not in current_app.view_functions:
            return None
        try:
            return url_for(endpoint, **values)
        except BuildError:
            return None

    def temporal_ui_url(workflow_id: str, run_id: str | None = None) -> str:
        return run_ui_url(current_app.config, workflow_id, run_id)

    return {
        "endpoint_exists": lambda endpoint: endpoint in current_app.view_functions,
        "endpoint_url": endpoint_url,
        "temporal_ui_url": temporal_ui_url,
        "temporal_unreachable": lambda: g.get("temporal_unreachable"),
        "temporal_errors": lambda: g.get("temporal_errors", []),
        "duration": format_duration,
    }


def format_duration(value: timedelta | float | None) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _registered(workflow_type: str) -> registry.RegisteredWorkflow | None:
    try:
        return registry.workflow(workflow_type)
    except LookupError:
        return None


def _check_ids(workflow_id: str, run_id: str | None = None) -> None:
    if not WORKFLOW_ID_RE.fullmatch(workflow_id):
        abort(404, "No run has that id.")
    if run_id is not None and not visibility.RUN_ID_RE.fullmatch(run_id):
        abort(404, "No run has that id.")


# --- the list ----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Gateways whose server refused ORDER BY once (SQL visibility); not asked again.
_order_by_unsupported: weakref.WeakSet = weakref.WeakSet()


def _list_page(filters: visibility.RunFilters, token: bytes | None) -> tuple[Any, str | None]:
    """One page of runs in the requested order.

    Servers with Elasticsearch visibility sort by `ORDER BY StartTime`; the SQL visibility
    of the dev server refuses ORDER BY, so there the server's default order (running
    first, then most recently closed) is kept and each page is sorted by start time.
    """
    gw = gateway()
    scope = console_scope()
    if gw not in _order_by_unsupported:
        try:
            return gw.list_runs(
                visibility.build_query(filters, scope=scope, order=True),
                page_size=filters.page_size,
                next_page_token=token,
            ), None
        except GatewayError as exc:
            if "ORDER BY" not in exc.message:
                raise
            _order_by_unsupported.add(gw)
    page = gw.list_runs(
        visibility.build_query(filters, scope=scope),
        page_size=filters.page_size,
        next_page_token=token,
    )
    page.runs.sort(key=lambda r: r.start_time or _EPOCH, reverse=filters.sort == "newest")
    note = (
        "This Temporal server cannot sort its visibility lists: runs come running first, "
        "then most recently closed; rows on each page are sorted by start time."
    )
    return page, note


# Temporal calls a page makes beside the one it waits on (a count beside the list, the
# next history page while this one is summarised, the progress query beside the history).
_beside = ThreadPoolExecutor(max_workers=8, thread_name_prefix="runs-beside")
_count_cache: dict[tuple[int, str], tuple[float, dict[str, int]]] = {}
COUNT_CACHE_SECONDS = 5.0


def status_counts(query: str) -> Callable[[], dict[str, int]]:
    """Start the grouped status count now; call the result to wait for it.

    The count runs beside the list call (it costs about as much again on SQL visibility),
    and an answer is reused for a few seconds: counts on a busy list change every second
    anyway, and a person paging through it should not pay for them on every page.
    """
    gw = gateway()
    key = (id(gw), query)
    cached = _count_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < COUNT_CACHE_SECONDS:
        return lambda: cached[1]
    future = _beside.submit(gw.count_by_status, query)

    def wait() -> dict[str, int]:
        counts = future.result()
        if len(_count_cache) > 1000:
            _count_cache.clear()
        _count_cache[key] = (time.monotonic(), counts)
        return counts

    return wait


def _business_key_workflow_ids(q: str) -> list[str]:
    """Payout workflows for a payout id typed in the search box (`7` or `payout:7`)."""
    raw = q.removeprefix("payout:")
    if not is_id_text(raw):
        return []
    return list(db.session.scalars(select(Payout.workflow_id).where(Payout.id == int(raw))))


@bp.get("")
@require("view")
def index():
    filters, errors = visibility.parse_filters(request.args)
    token = None
    try:
        token = visibility.decode_page_token(request.args.get("page"))
    except ValueError as exc:
        errors["page"] = str(exc)
    page_number, problem = query_int(request.args, "p", 1, lo=1, hi=MAX_PAGE_NUMBER)
    if problem:
        errors["p"] = problem

    runs: list[RunInfo] = []
    next_token = ""
    counts: dict[str, int] | None = None
    sort_note = None
    if not errors:
        if filters.q:
            filters = visibility.with_workflow_ids(filters, _business_key_workflow_ids(filters.q))
        count_query = visibility.build_query(filters, scope=console_scope(), include_status=False)
        pending_counts = status_counts(count_query)
        result = temporal(_list_page, filters, token)
        if result is not None:
            page, sort_note = result
            runs = page.runs
            next_token = visibility.encode_page_token(page.next_page_token)
        counts = temporal(pending_counts)

    context = {
        "filters": filters,
        "errors": errors,
        "runs": runs,
        "counts": counts,
        "next_token": next_token,
        "page_number": page_number,
        "sort_note": sort_note,
        "domains": list(registry.domains()),
        "workflow_types": visibility.workflow_types(),
        "statuses": visibility.STATUSES,
        "entity_types": visibility.entity_types(),
        "page_sizes": visibility.PAGE_SIZES,
        "registered": {w.name: w for w in registry.all_workflows()},
        "args": request.args,
    }
    return render_template("runs/index.html", **context), 400 if errors else 200


@bp.get("/live")
@require("view")
def live():
    """Fresh rows for the running runs on a page (one call), polled while any runs."""
    run_ids = [r for r in request.args.getlist("run") if visibility.RUN_ID_RE.fullmatch(r)]
    run_ids = run_ids[:LIVE_MAX_ROWS]
    runs: list[RunInfo] = []
    if run_ids:
        query = visibility.runs_by_id_query(run_ids, scope=console_scope())
        page = temporal(gateway().list_runs, query, page_size=len(run_ids))
        runs = page.runs if page is not None else []
    if g.get("temporal_unreachable"):
        still_running = run_ids  # keep trying: Temporal may come back
    else:
        still_running = [r.run_id for r in runs if r.is_running]
    return render_template(
        "runs/_live.html",
        runs=runs,
        still_running=still_running,
        registered={w.name: w for w in registry.all_workflows()},
    )


# --- one run -----------------------------------------------------------------------------


@bp.get("/<workflow_id>")
@require("view")
def latest(workflow_id: str):
    """The latest run of a workflow id (domain pages link here with a business key)."""
    _check_ids(workflow_id)
    try:
        info = gateway().describe(workflow_id)
    except RunNotFound:
        abort(404, f"No run with workflow id {workflow_id}.")
    except GatewayError as exc:
        abort(503, f"Temporal could not be asked about this run: {exc.message}")
    return redirect(url_for("runs.detail", workflow_id=workflow_id, run_id=info.run_id))


def fetch_timeline(workflow_id: str, run_id: str) -> Timeline:
    """Read the whole history page by page and summarise it as it arrives (no cache)."""
    builder = TimelineBuilder()
    token = b""
    while True:
        events, token = gateway().history_events(
            workflow_id, run_id, next_page_token=token, page_size=HISTORY_PAGE_SIZE
        )
        builder.add_all(events)
        if not token:
            return builder.finish()


@dataclass
class _SeenHistory:
    """What this process has read of one run's history, to read only what is new."""

    builder: TimelineBuilder = dataclass_field(default_factory=TimelineBuilder)
    last_event_id: int = 0
    progress: Any = None
    progress_at_length: int = -1
    lock: threading.Lock = dataclass_field(default_factory=threading.Lock)


class HistoryCache:
    """Histories read so far, per run, least recently used dropped first.

    The first look at a run reads its whole history; later looks (the live refresh every
    2 s, a reload) read only the events after the last one seen, from the end of the
    history backwards, and only when the run's history length says there is something
    new. Closed runs' histories do not change, so a reload of one costs no history call
    at all. Each console process has its own cache; a request that lands on another
    process reads the whole history there once.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._runs: OrderedDict[tuple[int, str, str], _SeenHistory] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, run: RunInfo) -> _SeenHistory | None:
        """What was seen of this run, if anything (does not create an entry)."""
        with self._lock:
            return self._runs.get((id(gateway()), run.workflow_id, run.run_id))

    def _entry(self, key: tuple[int, str, str]) -> _SeenHistory:
        with self._lock:
            entry = self._runs.pop(key, None) or _SeenHistory()
            self._runs[key] = entry
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
            return entry

    def timeline(self, run: RunInfo) -> tuple[Timeline, _SeenHistory]:
        gw = gateway()
        entry = self._entry((id(gw), run.workflow_id, run.run_id))
        with entry.lock:
            unseen = run.history_length - entry.last_event_id
            if entry.last_event_id and unseen > 0:
                fresh = gw.newest_history_events(
                    run.workflow_id,
                    run.run_id,
                    after_event_id=entry.last_event_id,
                    expected=unseen,
                )
                if fresh is not None:
                    self._add(entry, fresh)
                    return entry.builder.finish(), entry
            if unseen > 0:
                self._read_forward(gw, run, entry)
            return entry.builder.finish(), entry

    @staticmethod
    def _add(entry: _SeenHistory, events: list[Any]) -> None:
        fresh = [e for e in events if e.event_id > entry.last_event_id]
        entry.builder.add_all(fresh)
        if fresh:
            entry.last_event_id = fresh[-1].event_id

    def _read_forward(self, gw: Any, run: RunInfo, entry: _SeenHistory) -> None:
        """The whole history from the start, adding what was not seen yet. While one page is
        summarised here, the next is already being fetched."""
        token = b""
        ahead: Future = _beside.submit(self._page, gw, run, token)
        while True:
            events, token = ahead.result()
            if token and events:
                ahead = _beside.submit(self._page, gw, run, token)
            self._add(entry, events)
            if not token or not events:
                return

    @staticmethod
    def _page(gw: Any, run: RunInfo, token: bytes) -> tuple[list[Any], bytes]:
        return gw.history_events(
            run.workflow_id, run.run_id, next_page_token=token, page_size=HISTORY_PAGE_SIZE
        )

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()


history_cache = HistoryCache()


def query_progress(workflow_id: str, run_id: str) -> Callable[[], tuple[Any, str | None]]:
    """Ask for the run's `progress` now (short timeout: no worker, no wait); call the result
    for the answer, or None and why not."""
    future = _beside.submit(
        gateway().query, workflow_id, "progress", run_id, timeout_seconds=PROGRESS_QUERY_SECONDS
    )

    def answer() -> tuple[Any, str | None]:
        try:
            return future.result(), None
        except TemporalUnavailable as exc:
            if g.get("temporal_unreachable"):
                return None, exc.message
            return None, "no worker answered the progress query in time"
        except GatewayError as exc:
            return None, f"progress query failed: {exc.message}"

    return answer


def _detail_context(workflow_id: str, run_id: str) -> dict[str, Any]:
    gw = gateway()
    try:
        run = gw.describe(workflow_id, run_id)
    except RunNotFound:
        abort(404, f"No run {run_id} of {workflow_id}.")
    except TemporalUnavailable as exc:
        g.temporal_unreachable = exc.message
        abort(503, f"Temporal is unreachable, so this run cannot be shown: {exc.message}")
    except GatewayError as exc:
        abort(502, exc.message)
    # The progress answer can only change when the workflow has run a task, which adds
    # events: while the history has not grown, the last answer still stands.
    seen_before = history_cache.peek(run)
    asked = None
    if run.is_running and not (
        seen_before is not None and seen_before.progress_at_length == run.history_length
    ):
        asked = query_progress(workflow_id, run_id)
    result = temporal(history_cache.timeline, run)
    timeline, seen = result if result is not None else (None, None)
    progress, progress_problem = (None, None)
    if asked is not None:
        progress, progress_problem = asked()
        if seen is not None and progress_problem is None:
            seen.progress, seen.progress_at_length = progress, run.history_length
    elif run.is_running and seen is not None:
        progress = seen.progress
    return {
        "run": run,
        "registered": _registered(run.workflow_type),
        "timeline": timeline,
        "progress": progress,
        "progress_problem": progress_problem,
        "pending": run.pending_activities if run.is_running else [],
        "ui_url": run_ui_url(current_app.config, workflow_id, run_id),
    }


@bp.get("/<workflow_id>/<run_id>")
@require("view")
def detail(workflow_id: str, run_id: str):
    _check_ids(workflow_id, run_id)
    return render_template("runs/detail.html", **_detail_context(workflow_id, run_id))


@bp.get("/<workflow_id>/<run_id>/live")
@require("view")
def detail_live(workflow_id: str, run_id: str):
    """The run's changing parts; replaces itself every 2 s until the run closes."""
    _check_ids(workflow_id, run_id)
    return render_template("runs/_detail_live.html", **_detail_context(workflow_id, run_id))


@bp.get("/<workflow_id>/<run_id>/events")
@require("view")
def events(workflow_id: str, run_id: str):
    """The raw history, one page of events at a time (Temporal's page token in the URL)."""
    _check_ids(workflow_id, run_id)
    try:
        token = visibility.decode_page_token(request.args.get("page"))
    except ValueError as exc:
        abort(400, str(exc))
    try:
        page = gateway().history_page(
            workflow_id, run_id, page_size=EVENTS_PAGE_SIZE, next_page_token=token
        )
    except RunNotFound:
        abort(404, f"No run {run_id} of {workflow_id}.")
    except GatewayError as exc:
        abort(503, exc.message)
    rows = [
        {
            "id": e.get("eventId"),
            "time": e.get("eventTime"),
            "type": event_type_name(e),
            "json": json.dumps(e, indent=2, sort_keys=True),
        }
        for e in page.events
    ]
    return render_template(
        "runs/events.html",
        workflow_id=workflow_id,
        run_id=run_id,
        rows=rows,
        next_token=visibility.encode_page_token(page.next_page_token),
        first=token is None,
    )


@bp.get("/<workflow_id>/<run_id>/history.json")
@require("view")
def history_json(workflow_id: str, run_id: str):
    """The raw history as a JSON download, streamed page by page."""
    _check_ids(workflow_id, run_id)
    gw = gateway()
    try:  # fail before the download starts if the run does not exist
        first = gw.history_page(workflow_id, run_id, page_size=HISTORY_PAGE_SIZE)
    except RunNotFound:
        abort(404, f"No run {run_id} of {workflow_id}.")
    except GatewayError as exc:
        abort(503, exc.message)

    def generate() -> Iterator[str]:
        page = first
        yield '{"events": ['
        sep = ""
        while True:
            for event in page.events:
                yield sep + json.dumps(event, sort_keys=True)
                sep = ",\n"
            if not page.next_page_token:
                break
            page = gw.history_page(
                workflow_id,
                run_id,
                page_size=HISTORY_PAGE_SIZE,
                next_page_token=page.next_page_token,
            )
        yield "]}\n"

    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{workflow_id}-{run_id}")[:200]
    return Response(
        stream_with_context(generate()),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{safe_name}.history.json"'},
    )


# --- acting on a run (the work is in dashboard.run_actions) -------------------------------


@bp.post("/<workflow_id>/signal/<name>")
@guard("signal")
def signal(workflow_id: str, name: str):
    return handler_forms.send("signal", workflow_id, name)


@bp.post("/<workflow_id>/update/<name>")
@guard("signal")
def update(workflow_id: str, name: str):
    return handler_forms.send("update", workflow_id, name)


@bp.post("/<workflow_id>/cancel")
@guard("cancel")
def cancel(workflow_id: str):
    return control.control("cancel", workflow_id)


@bp.post("/<workflow_id>/terminate")
@guard("terminate")
def terminate(workflow_id: str):
    return control.control("terminate", workflow_id)


@bp.post("/<workflow_id>/reset")
@guard("reset")
def reset(workflow_id: str):
    return control.reset(workflow_id)


@bp.post("/<workflow_id>/retry")
@guard("retry")
def retry(workflow_id: str):
    return run_retry.retry(workflow_id)


@bp.route("/bulk-retry", methods=["GET", "POST"])
@guard("retry")
def bulk_retry():
    return run_bulk_retry.bulk_retry()
