"""Bulk retry: the failed runs matching a runs filter that are still their workflow's
latest run (capped), offered with a money check; on confirmation each ticked run starts
again with its input under its business id."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import flash, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from dashboard import visibility
from dashboard.gateway_calls import console_scope
from dashboard.run_actions.control import workflow_for_run
from dashboard.run_actions.retry import rerun
from dashboard.writes import (
    Reason,
    form_params,
    gateway_status,
    link,
    parse_reason,
    record,
    record_gateway_error,
    record_invalid,
)
from estuary.contracts import catalogue
from estuary.contracts.approval_rules import reason_codes_for
from estuary.db import db
from estuary.models import Payout, Transfer
from temporal_gateway.access import gateway
from temporal_gateway.gateway import CLOSED_FAILED_STATUSES, GatewayError, RunInfo
from temporal_gateway.run_history import summarise_history

# What the bulk-retry form declares: the runs filters and the ticked runs.
BULK_FIELDS = (*visibility.FILTER_FIELDS, "run")
# Bulk retry: at most this many runs per confirmation.
BULK_RETRY_CAP = 25
# How many pages of failed runs the preview reads, at most, looking for runs not yet retried.
BULK_PREVIEW_PAGES = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_REASON = Reason("", "")


@dataclass
class BulkRow:
    run: RunInfo
    money: bool
    could_move: bool | None = None


def bulk_filters(source: Mapping[str, Any]) -> tuple[visibility.RunFilters, dict[str, str], str]:
    """The runs filter of the form, its errors, and the visibility query of its failed runs."""
    filters, errors = visibility.parse_filters(source)
    if not errors:
        filters, search_problem = visibility.resolve_search(filters)
        if search_problem:
            errors["q"] = search_problem
    status = filters.status if filters.status in CLOSED_FAILED_STATUSES else "Failed"
    filters = dataclasses.replace(filters, status=status)
    scope = console_scope()
    # No ORDER BY: the dev server's visibility store refuses it; Temporal lists newest first.
    query = visibility.build_query(filters, scope=scope) if not errors else ""
    return filters, errors, query


def bulk_preview(query: str) -> tuple[int, list[BulkRow]]:
    """Failed runs matching the filter that are still their workflow's latest run.

    A retried run stays Failed in Temporal's lists, under a workflow id that now has a
    newer run: it is left out, so each pass offers the next failed runs instead of the
    ones already retried. `total` counts the runs not yet retried among those read; the
    count of all failed runs (`gw.count`) less the retried ones seen is the best estimate
    when the read stopped at the cap.
    """
    gw = gateway()
    scope = console_scope()
    offered: list[RunInfo] = []
    superseded = 0
    token: bytes | None = None
    for _ in range(BULK_PREVIEW_PAGES):
        page = gw.list_runs(query, page_size=100, next_page_token=token)
        latest = latest_run_ids(gw, scope, [r.workflow_id for r in page.runs])
        for run in page.runs:
            if latest.get(run.workflow_id) == run.run_id:
                offered.append(run)
            else:
                superseded += 1
        token = page.next_page_token
        if not token or len(offered) >= BULK_RETRY_CAP:
            break
    total = len(offered) if not token else max(len(offered), gw.count(query) - superseded)
    rows = []
    for run in offered[:BULK_RETRY_CAP]:
        wf = workflow_for_run(run)
        rows.append(BulkRow(run, bool(wf and wf.spec.money)))
    _mark_paid(rows)
    return total, rows


def _mark_paid(rows: list[BulkRow]) -> None:
    """Money rows: could a retry move money? One query for every previewed run."""
    workflow_ids = [row.run.workflow_id for row in rows]
    if not workflow_ids:
        return
    paid = set(
        db.session.scalars(
            select(Payout.workflow_id)
            .join(Transfer, Transfer.payout_id == Payout.id)
            .where(Payout.workflow_id.in_(workflow_ids))
        )
    )
    for row in rows:
        if row.money:
            row.could_move = row.run.workflow_id not in paid


def latest_run_ids(gw: Any, scope: str, workflow_ids: list[str]) -> dict[str, str]:
    """The newest run of each workflow id (one list call for them all)."""
    if not workflow_ids:
        return {}
    query = visibility.runs_of_workflows_query(workflow_ids, scope=scope)
    latest: dict[str, RunInfo] = {}
    token: bytes | None = None
    while True:
        page = gw.list_runs(query, page_size=1000, next_page_token=token)
        for run in page.runs:
            known = latest.get(run.workflow_id)
            if known is None or (run.start_time or _EPOCH) > (known.start_time or _EPOCH):
                latest[run.workflow_id] = run
        token = page.next_page_token
        if not token:
            return {wid: run.run_id for wid, run in latest.items()}


def bulk_retry() -> ResponseReturnValue:
    """GET: which failed runs match the filter (capped) — changes nothing. POST: confirm."""
    posted = request.method == "POST"
    filters, errors, query = bulk_filters(request.form if posted else request.args)
    target = f"runs:{filters.query_string()}"[:300]
    if errors:
        if posted:
            record_invalid(target, errors, params=form_params(request.form, BULK_FIELDS))
        return bulk_page(filters, errors, 0, [], NO_REASON, {}, 422)
    try:
        total, rows = bulk_preview(query)
    except GatewayError as exc:
        if posted:
            record_gateway_error(exc, target=target)
        return bulk_page(filters, {}, 0, [], NO_REASON, {}, gateway_status(exc), error=exc.message)
    if not posted:
        return bulk_page(filters, {}, total, rows, NO_REASON, {}, 200)

    money = any(r.money for r in rows)
    reason, reason_errors = parse_reason(request.form, money=money, required=True, action="retry")
    chosen = set(request.form.getlist("run"))
    if not chosen:
        reason_errors["run"] = "tick at least one run"
    if len(chosen) > BULK_RETRY_CAP:
        reason_errors["run"] = f"at most {BULK_RETRY_CAP} runs at once"
    if reason_errors:
        record_invalid(
            target, reason_errors, params=form_params(request.form, BULK_FIELDS), reason=str(reason)
        )
        return bulk_page(filters, {}, total, rows, reason, reason_errors, 422)
    # Only runs that were shown and still match: a run retried meanwhile has left the
    # filter (its id now has a newer run) and is skipped.
    todo = [r for r in rows if f"{r.run.workflow_id}|{r.run.run_id}" in chosen]
    results = [retry_one(row, reason) for row in todo]
    skipped = len(chosen) - len(todo)
    done = sum(1 for ok, _ in results if ok)
    summary = f"Bulk retry: {done} of {len(todo)} runs started again"
    if skipped:
        summary += f"; {skipped} no longer matched the filter and were left alone"
    flash(summary + ".", "success" if done == len(todo) and not skipped else "warning")
    return render_template(
        "actions/bulk_result.html",
        results=list(zip(todo, results, strict=True)),
        summary=summary,
        filters=filters,
        runs_url=runs_url(filters),
    )


def retry_one(row: BulkRow, reason: Reason) -> tuple[bool, str]:
    """Start one previewed run again (audited on its own): ok, and what happened."""
    run = row.run
    wf = workflow_for_run(run)
    target = f"workflow:{run.workflow_id}"
    params = {"mode": "rerun", "run_id": run.run_id, "bulk": True}
    if wf is None:
        record("error", target=target, params=params, detail="not a registered workflow")
        return False, "not a registered workflow"
    try:
        history = summarise_history(run.workflow_id, run.run_id, wf.spec.input_type)
        if history.input is None:
            raise GatewayError(history.input_error or "the run's input could not be read")
        new_run, existing = rerun(
            wf, run, history, str(reason), {"retry_of": run.run_id, "bulk_retry": True}
        )
    except GatewayError as exc:
        record_gateway_error(exc, target=target, params=params, reason=str(reason))
        return False, exc.message
    detail = f"already running as {new_run}" if existing else f"started again as run {new_run}"
    record("success", target=target, params=params, reason=str(reason), detail=detail)
    return True, detail


def runs_url(filters: visibility.RunFilters) -> str | None:
    """The runs list with the same filters, if that page exists."""
    base = link("runs.index")
    if not base:
        return None
    qs = filters.query_string()
    return f"{base}?{qs}" if qs else base


def bulk_page(
    filters: visibility.RunFilters,
    errors: dict[str, str],
    total: int,
    rows: list[BulkRow],
    reason: Reason,
    reason_errors: dict[str, str],
    status: int,
    error: str = "",
) -> ResponseReturnValue:
    return (
        render_template(
            "actions/bulk_retry.html",
            domains=list(catalogue.domains()),
            workflow_types=visibility.workflow_types(),
            entity_types=visibility.entity_types(),
            retry_statuses=CLOSED_FAILED_STATUSES,
            filters=filters,
            filter_errors=errors,
            total=total,
            rows=rows,
            cap=BULK_RETRY_CAP,
            money=any(r.money for r in rows),
            reason=reason,
            errors=reason_errors,
            reason_codes=reason_codes_for("retry"),
            error=error,
            runs_url=runs_url(filters),
            hidden=filters.as_params(),
        ),
        status,
    )
