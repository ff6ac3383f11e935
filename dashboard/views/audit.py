"""The audit log: a filtered, paged view, a CSV export that cannot smuggle formulas into
a spreadsheet, and `flask audit verify`, which checks every event's MAC, sequence number
and link and the anchored heads, anchors the current head, and exits non-zero naming
the first broken sequence number and the kind of break.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, render_template, request, stream_with_context, url_for
from sqlalchemy import Select, func, select

from dashboard import times
from dashboard.writes import guard, record
from estuary.contracts.checks import text_problem
from estuary.contracts.inputs import is_id_text
from estuary.db import db
from estuary.models import AuditEvent
from estuary.services import audit as audit_service

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
MAX_FILTER_LENGTH = 200
TEXT_FILTERS = ("actor", "action", "target")
# A spreadsheet treats a cell starting with one of these as a formula (or, for tab and
# carriage return, may strip them and then see one).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "id",
    "occurred_at",
    "actor",
    "role",
    "action",
    "target",
    "params",
    "reason",
    "outcome",
    "detail",
    "client_addr",
    "request_id",
    "prev_hash",
    "hash",
    "seq",
    "key_id",
)


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    target: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_params(self) -> dict[str, str]:
        out = {k: getattr(self, k) for k in (*TEXT_FILTERS, "outcome") if getattr(self, k)}
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        return out


def parse_filters(args: Mapping[str, str]) -> tuple[AuditFilters, dict[str, str]]:
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    for name in TEXT_FILTERS:
        raw = str(args.get(name) or "").strip()
        problem = text_problem(raw, MAX_FILTER_LENGTH)
        if problem:
            errors[name] = problem
        elif raw:
            values[name] = raw
    outcome = str(args.get("outcome") or "").strip()
    if outcome:
        if outcome in audit_service.OUTCOMES:
            values["outcome"] = outcome
        else:
            errors["outcome"] = f"must be one of: {', '.join(audit_service.OUTCOMES)}"
    for name in ("since", "until"):
        raw = str(args.get(name) or "").strip()
        if not raw:
            continue
        try:
            values[name] = times.parse_local(raw)
        except ValueError as exc:
            errors[name] = str(exc)
    since, until = values.get("since"), values.get("until")
    if isinstance(since, datetime) and isinstance(until, datetime) and until <= since:
        errors["until"] = "must be later than 'since'"
    return AuditFilters(**values), errors  # type: ignore[arg-type]


def filtered(filters: AuditFilters) -> Select:
    query = select(AuditEvent)
    for name in TEXT_FILTERS:
        value = getattr(filters, name)
        if value:
            column = getattr(AuditEvent, name)
            query = query.where(func.lower(column).contains(value.lower(), autoescape=True))
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.since:
        query = query.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.occurred_at < filters.until)
    return query


def _flat_params(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """Parameters as (name, text) pairs; nested ones named `outer · inner`, lists joined."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, inner in value.items():
            if inner in (None, "", [], {}):
                continue
            pairs += _flat_params(inner, f"{prefix} · {key}" if prefix else str(key))
        return pairs
    if isinstance(value, list | tuple):
        if all(not isinstance(v, dict | list | tuple) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        pairs = []
        for i, inner in enumerate(value, start=1):
            pairs += _flat_params(inner, f"{prefix} {i}")
        return pairs
    if isinstance(value, bool):
        return [(prefix, "yes" if value else "no")]
    return [(prefix, str(value))]


def params_items(event: AuditEvent) -> list[tuple[str, str]]:
    """An event's parameters as a page shows them: a name and its value each."""
    try:
        params = json.loads(event.params_json or "{}")
    except ValueError:
        return [("parameters", event.params_json or "")]
    if not isinstance(params, dict):
        return [("parameters", str(params))]
    return [(name.replace("_", " "), text) for name, text in _flat_params(params)]


@bp.get("/")
@guard("view")
def index():
    filters, errors = parse_filters(request.args)
    events: list[AuditEvent] = []
    older = None
    raw_before = str(request.args.get("before") or "")
    before = int(raw_before) if is_id_text(raw_before) else None
    if raw_before and before is None:
        errors["before"] = "the page link is damaged; start again from the newest"
    if not errors:
        query = filtered(filters).order_by(AuditEvent.id.desc()).limit(PAGE_SIZE + 1)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        events = list(db.session.scalars(query))
        if len(events) > PAGE_SIZE:
            events = events[:PAGE_SIZE]
            older = url_for("audit.index", **filters.as_params(), before=events[-1].id)
    return (
        render_template(
            "audit/index.html",
            events=events,
            filters=filters,
            errors=errors,
            outcomes=audit_service.OUTCOMES,
            older=older,
            newest=url_for("audit.index", **filters.as_params()) if before else None,
            export_url=url_for("audit.export", **filters.as_params()),
            params_items=params_items,
        ),
        422 if errors else 200,
    )


def neutralise(value: object) -> str:
    """A cell that a spreadsheet will show as text, never run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def csv_rows(filters: AuditFilters) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    query = filtered(filters).order_by(AuditEvent.id).limit(EXPORT_LIMIT)
    for event in db.session.scalars(query).yield_per(500):
        writer.writerow(
            [
                neutralise(v)
                for v in (
                    event.id,
                    event.occurred_at.isoformat(),
                    event.actor,
                    event.role,
                    event.action,
                    event.target,
                    event.params_json,
                    event.reason,
                    event.outcome,
                    event.detail,
                    event.client_addr,
                    event.request_id,
                    event.prev_hash,
                    event.hash,
                    event.seq,
                    event.key_id,
                )
            ]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@bp.get("/export.csv")
@guard("export_audit")
def export():
    filters, errors = parse_filters(request.args)
    if errors:
        return (
            render_template(
                "audit/index.html",
                events=[],
                filters=filters,
                errors=errors,
                outcomes=audit_service.OUTCOMES,
                older=None,
                newest=None,
                export_url=None,
                params_items=params_items,
            ),
            422,
        )
    # Who took a copy of the audit trail is itself worth keeping.
    record("success", target="audit:export", params=filters.as_params())
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(csv_rows(filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
