"""What the domain pages (`/practitioners`, `/bookings`, `/payouts`, `/notifications`)
share: validated list filters and paging, the lookup that 404s, the entity's ops flags
and recent runs, and the `age` filter and `page_url` helper their templates use.

Everything but the recent runs comes from the app database, so the pages work when
Temporal is unreachable; the runs come from Temporal in one call, and a banner says so
when it cannot be asked. A bad URL parameter is a field error and no query runs with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, abort, render_template, request, url_for
from sqlalchemy import Select, func, select

from dashboard import visibility
from dashboard.gateway_calls import console_scope, temporal
from dashboard.presentation.live import live_fresh_for
from estuary.contracts.inputs import parse_id, query_int
from estuary.db import db
from estuary.models import OpsFlag
from estuary.models.base import utcnow
from temporal_gateway.access import gateway

PAGE_SIZE = 50
MAX_PAGE = 100_000
RECENT = 20
TEMPLATE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


@dataclass
class Params:
    values: dict[str, Any]
    errors: dict[str, str]
    page: int

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def list_params(args: Mapping[str, str], spec: dict[str, Any]) -> Params:
    """Validate list filters: spec maps a name to a tuple of choices, "id", "flag" or "text"."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, kind in spec.items():
        given = str(args.get(name) or "")
        raw = given.strip()
        if not raw:
            continue
        if isinstance(kind, tuple):
            if raw in kind:
                values[name] = raw
            else:
                errors[name] = f"must be one of: {', '.join(kind)}"
        elif kind == "id":
            try:
                values[name] = parse_id(given)  # unstripped: " 7" is refused, not fixed
            except ValueError as exc:
                errors[name] = str(exc)
        elif kind == "flag":
            if raw in ("1", "0"):
                values[name] = raw == "1"
            else:
                errors[name] = "must be 1 or 0"
        elif kind == "text":
            if len(raw) <= 100 and "\x00" not in raw:
                values[name] = raw
            else:
                errors[name] = "at most 100 characters"
        elif kind == "template":
            if TEMPLATE_RE.fullmatch(raw):
                values[name] = raw
            else:
                errors[name] = "letters, digits and _ . : - only"
    page, problem = query_int(args, "page", 1, lo=1, hi=MAX_PAGE)
    if problem:
        errors["page"] = problem
    return Params(values, errors, page)


def paged(query: Select, page: int) -> tuple[list[Any], bool]:
    rows = list(db.session.scalars(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def list_page(
    template: str, p: Params, rows: list[Any], more: bool, **context: Any
) -> tuple[str, int]:
    """A list page: its rows, whether there are more, the filters (400 if one is bad)."""
    return render_template(template, rows=rows, more=more, p=p, **context), (
        400 if p.errors else 200
    )


def like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def get_or_404(model: type, ident: int, what: str) -> Any:
    row = db.session.get(model, ident)
    if row is None:
        abort(404, f"No {what} {ident}.")
    return row


def entity_runs(entity_type: str, entity_id: int | str, limit: int = 10) -> list | None:
    """Recent runs about one entity (one Temporal call); None if Temporal cannot be asked."""
    filters = visibility.RunFilters(entity_type=entity_type, entity_id=str(entity_id))
    query = visibility.build_query(filters, scope=console_scope())
    page = temporal(gateway().list_runs, query, page_size=limit, fresh_for=live_fresh_for())
    return page.runs if page is not None else None


def workflow_runs(workflow_ids: list[str], limit: int = 10) -> list | None:
    ids = [w for w in workflow_ids if visibility.ID_RE.fullmatch(w)][:20]
    if not ids:
        return []
    scope = console_scope()
    where = "WorkflowId IN (" + ", ".join(visibility.quote(w) for w in ids) + ")"
    page = temporal(
        gateway().list_runs,
        f"({scope}) AND {where}" if scope else where,
        page_size=limit,
        fresh_for=live_fresh_for(),
    )
    return page.runs if page is not None else None


def rows_where(model: type, *conditions: Any, order_by: Any, limit: int | None = None) -> list[Any]:
    """The rows of `model` matching every condition, in `order_by` order, `limit` at most."""
    query = select(model).where(*conditions).order_by(order_by)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def counts_by(key: Any, counted: Any, *conditions: Any) -> dict[Any, int]:
    """How many rows match the conditions, per value of `key` (one grouped query)."""
    query = select(key, func.count(counted)).where(*conditions).group_by(key)
    return dict(db.session.execute(query).all())


def flags(entity_type: str, entity_id: int) -> list[OpsFlag]:
    """The entity's most recent ops flags."""
    return rows_where(
        OpsFlag,
        OpsFlag.entity_type == entity_type,
        OpsFlag.entity_id == entity_id,
        order_by=OpsFlag.raised_at.desc(),
        limit=RECENT,
    )


def names(model: type, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


# What each domain page offers to start, by the entity's status (only when the entity
# has no run of that workflow to act on). A status not listed offers nothing to start.
STARTS_BY_STATE: dict[str, dict[str, frozenset[str]]] = {
    "practitioner": {
        "pending": frozenset({"PractitionerOnboardingWorkflow"}),
        "onboarding": frozenset({"PractitionerOnboardingWorkflow"}),
        "rejected": frozenset({"PractitionerOnboardingWorkflow"}),
        "active": frozenset(
            {
                "PractitionerPayoutWorkflow",
                "TrainingCertificationWorkflow",
                "PractitionerVerificationWorkflow",
            }
        ),
        "suspended": frozenset({"PractitionerVerificationWorkflow", "PractitionerPayoutWorkflow"}),
    },
    "booking": {
        "confirmed": frozenset({"BookingLifecycleWorkflow", "ReschedulingWorkflow"}),
    },
}
# Workflows whose actions a page offers before the run exists: sending one starts the
# run first (`dashboard.run_actions.start_first`).
START_FIRST = frozenset({"BookingLifecycleWorkflow"})
START_LABELS = {
    "PractitionerOnboardingWorkflow": "Start onboarding",
    "PractitionerPayoutWorkflow": "Pay out now",
    "TrainingCertificationWorkflow": "Start a training certification",
    "PractitionerVerificationWorkflow": "Verify documents again",
    "ReschedulingWorkflow": "Move to a new booking",
    "BookingLifecycleWorkflow": "Start the booking's lifecycle",
}


def fitting_starts(entity_type: str, state: str | None) -> frozenset[str] | None:
    """The workflows that make sense to start for an entity in `state`; None (no rule:
    every one) when no state is given or the entity type has no rules."""
    rules = STARTS_BY_STATE.get(entity_type)
    if state is None or rules is None:
        return None
    return rules.get(state, frozenset())


def start_label(workflow_name: str) -> str:
    """The start button's words for a workflow (its name when it has none)."""
    return START_LABELS.get(workflow_name, f"Start {workflow_name}")


def age(value: datetime | None) -> str:
    """How long ago (or from now) a time is, in words."""
    if value is None:
        return "-"
    delta = value - utcnow()
    seconds = int(abs(delta.total_seconds()))
    if seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86400 * 2:
        text = f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86400} days"
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} ago"


def _pager_helpers() -> dict[str, Any]:
    def page_url(page: int) -> str:
        args = {k: v for k, v in request.args.items() if k != "page"}
        return url_for(
            request.endpoint or "home.index", **(request.view_args or {}), **args, page=page
        )

    return {"page_url": page_url}


def register_template_helpers(app: Flask) -> None:
    """The `age` filter and `page_url` (the same list, another page) for the templates."""
    app.add_template_filter(age, "age")
    app.context_processor(_pager_helpers)
