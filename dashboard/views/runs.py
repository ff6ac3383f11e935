"""Runs: the visibility list with filters, and each run's detail.

The list makes a fixed number of Temporal calls whatever the page size (one page of runs
plus one grouped status count); filters live in the URL so a view can be shared. Rows
that are running refresh themselves by htmx (one call for all of them) until none runs.
The detail page summarises the history on the server (`dashboard.presentation.history`,
read by `dashboard.run_reader`, at most two calls per live refresh) and refreshes itself
while the run is open; the raw events sit behind a paginated view and a JSON download.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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

from dashboard import visibility
from dashboard.gateway_calls import console_scope, temporal
from dashboard.permissions import require
from dashboard.presentation.run_progress import run_page
from dashboard.run_actions import bulk_retry as run_bulk_retry
from dashboard.run_actions import control, handler_forms
from dashboard.run_actions import retry as run_retry
from dashboard.run_reader import run_histories
from dashboard.writes import guard, link
from estuary.contracts import catalogue as registry
from estuary.contracts.inputs import query_int
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


@bp.app_context_processor
def read_helpers() -> dict[str, Any]:
    def temporal_ui_url(workflow_id: str, run_id: str | None = None) -> str:
        return run_ui_url(current_app.config, workflow_id, run_id)

    return {
        "endpoint_exists": lambda endpoint: endpoint in current_app.view_functions,
        "endpoint_url": link,  # the URL of a page if it exists, else None
        "temporal_ui_url": temporal_ui_url,
        # This request's finding, or what the gateway already knows (its breaker is open).
        "temporal_unreachable": lambda: (
            g.get("temporal_unreachable") or gateway().unreachable_message()
        ),
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
    fresh_for = float(current_app.config.get("RUNS_LIST_CACHE_SECONDS", 0))
    if gw not in _order_by_unsupported:
        try:
            return gw.list_runs(
                visibility.build_query(filters, scope=scope, order=True),
                page_size=filters.page_size,
                next_page_token=token,
                fresh_for=fresh_for,
            ), None
        except GatewayError as exc:
            if "ORDER BY" not in exc.message:
                raise
            _order_by_unsupported.add(gw)
    page = gw.list_runs(
        visibility.build_query(filters, scope=scope),
        page_size=filters.page_size,
        next_page_token=token,
        fresh_for=fresh_for,
    )
    page.runs.sort(key=lambda r: r.start_time or _EPOCH, reverse=filters.sort == "newest")
    note = (
        "Running runs come first, then those that finished most recently; each page is "
        "sorted by start time."
    )
    return page, note


# The grouped status count runs beside the list call it goes with.
_beside = ThreadPoolExecutor(max_workers=8, thread_name_prefix="runs-beside")
COUNT_CACHE_SECONDS = 5.0


def status_counts(query: str) -> Callable[[], dict[str, int]]:
    """Start the grouped status count now; call the result to wait for it.

    The count runs beside the list call (it costs about as much again on SQL visibility),
    and the gateway reuses an answer for a few seconds: counts on a busy list change
    every second anyway, and a person paging through it should not pay for them on every
    page.
    """
    gw = gateway()
    known = gw.cached_count_by_status(query, fresh_for=COUNT_CACHE_SECONDS)
    if known is not None:
        return lambda: known
    future = _beside.submit(gw.count_by_status, query, fresh_for=COUNT_CACHE_SECONDS)
    return future.result


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
        filters, search_problem = visibility.resolve_search(filters)
        if search_problem:
            errors["q"] = search_problem
    if not errors:
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
    # A search that was not understood is answered on the page, like any search.
    return render_template("runs/index.html", **context), 400 if set(errors) - {"q"} else 200


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


def _detail_context(workflow_id: str, run_id: str) -> dict[str, Any]:
    """The run as `dashboard.run_reader` reads it (a first look, or a later one that
    reads only what is new), with any failure turned into the page's banner or status."""
    try:
        look = run_histories.look(gateway(), workflow_id, run_id)
    except RunNotFound:
        abort(404, f"No run {run_id} of {workflow_id}.")
    except TemporalUnavailable as exc:
        g.temporal_unreachable = exc.message
        abort(503, f"Temporal is unreachable, so this run cannot be shown: {exc.message}")
    except GatewayError as exc:
        abort(502, exc.message)
    if isinstance(look.history_problem, TemporalUnavailable):
        g.temporal_unreachable = look.history_problem.message
    elif look.history_problem is not None:
        g.setdefault("temporal_errors", []).append(look.history_problem.message)
    run = look.run
    return {
        "run": run,
        "registered": _registered(run.workflow_type),
        "timeline": look.timeline,
        "progress": look.progress,
        "progress_problem": look.progress_problem,
        # Title, outcome, progress, result and input in business words (no JSON).
        "page": run_page(run, look.timeline, look.progress),
        "pending": run.pending_activities if run.is_running else [],
        "ui_url": run_ui_url(current_app.config, workflow_id, run_id),
        "live_version": look.version,
    }


@bp.get("/<workflow_id>/<run_id>")
@require("view")
def detail(workflow_id: str, run_id: str):
    _check_ids(workflow_id, run_id)
    return render_template("runs/detail.html", **_detail_context(workflow_id, run_id))


@bp.get("/<workflow_id>/<run_id>/live")
@require("view")
def detail_live(workflow_id: str, run_id: str):
    """The run's changing parts, polled every 2 s until the run closes; 204 (nothing to
    swap) when nothing the page shows has changed since its version (`seen`)."""
    _check_ids(workflow_id, run_id)
    context = _detail_context(workflow_id, run_id)
    if request.args.get("seen") == context["live_version"]:
        return "", 204
    # The title follows the run too (an onboarding's step), swapped out of band.
    return render_template("runs/_detail_live.html", title_oob=True, **context)


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
