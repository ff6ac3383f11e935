"""Visibility queries for the runs pages, built by the server from validated values only.

Temporal's list-filter tokenizer accepts backslash escapes and doubled quotes and skips
`--`, `#` and `/* */` comments, so escaping user text is not enough. Nothing a person
types reaches a query unless it is one of:

- a member of an enum (domain and workflow type from the registry, execution status,
  sort order, page size),
- an identifier matching `ID_RE` (letters, digits and `_ . : -`: no quote, backslash,
  space, `#`, `/` or `*` can get through, and `--` only ever sits inside a quoted value),
- a date-time parsed by `datetime.fromisoformat` (`dashboard.times.parse_local`) and
  re-formatted by us.

Anything else is a field error shown on the page; the view makes no Temporal call with it.
`quote()` refuses any value that is not an identifier, so a future caller cannot smuggle
raw text in either.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

from dashboard import run_search, times
from dashboard.run_search import RunSearch, SearchNotUnderstood, parse_search
from estuary.contracts import catalogue

ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# Temporal run ids are UUIDs; anything else is no run (a 404, never the server's
# "Invalid RunId" error).
RUN_ID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
STATUSES = (
    "Running",
    "Completed",
    "Failed",
    "Canceled",
    "Terminated",
    "ContinuedAsNew",
    "TimedOut",
)
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
SORTS = {"newest": "DESC", "oldest": "ASC"}
MAX_PAGE_TOKEN_CHARS = 4096
# The query parameters the runs page understands, in URL order.
FILTER_FIELDS = (
    "q",
    "domain",
    "workflow_type",
    "status",
    "entity_type",
    "entity_id",
    "started_after",
    "started_before",
    "closed_after",
    "page_size",
    "sort",
)


class UnsafeValue(ValueError):
    """A value that is not a validated identifier was about to be quoted into a query."""


def quote(value: str) -> str:
    """Quote a validated identifier for a visibility query."""
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise UnsafeValue(f"refusing to put {value!r} into a visibility query")
    return f"'{value}'"


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC, whole seconds: the only time text we ever put in a query."""
    if value.tzinfo is None:
        raise UnsafeValue("naive datetime")
    return "'" + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"


def console_scope(prefix: str) -> str:
    """The one visibility scope of a console's runs: those on a task queue under its
    `TEMPORAL_TASK_QUEUE_PREFIX` (its domains' queues and any other it runs there), so a
    run of another deployment sharing the namespace is on no page; no prefix, no scope
    (the namespace is the console's). The runs page, home counts and chart, domain pages,
    bulk retry and the demo all scope their queries with it (through
    `dashboard.gateway_calls.console_scope`); bulk retry refuses, row by row, a run whose
    workflow is not in the catalogue."""
    if not prefix:
        return ""
    return f"TaskQueue STARTS_WITH {quote(prefix)}"


def entity_types() -> list[str]:
    """Entity types named by the registered workflows (for the filter's choices)."""
    return sorted({w.spec.entity_type for w in catalogue.all_workflows()})


def workflow_types(domain: str | None = None) -> list[str]:
    return sorted(w.name for w in catalogue.all_workflows() if not domain or w.domain == domain)


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilters:
    """The validated filters of a runs view; every value here is safe to quote."""

    q: str = ""
    domain: str = ""
    workflow_type: str = ""
    status: str = ""
    entity_type: str = ""
    entity_id: str = ""
    started_after: datetime | None = None
    started_before: datetime | None = None
    closed_after: datetime | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    sort: str = "newest"
    # What the search box text `q` asks for (`dashboard.run_search`); None without one.
    search: RunSearch | None = field(default=None, compare=False)

    def as_params(self, **overrides: Any) -> dict[str, str]:
        """URL parameters that reproduce these filters (defaults left out)."""
        values = {name: getattr(self, name) for name in FILTER_FIELDS}
        values.update(overrides)
        out: dict[str, str] = {}
        for name in FILTER_FIELDS:
            value = values.get(name)
            if value in (None, ""):
                continue
            if name == "page_size" and value == DEFAULT_PAGE_SIZE:
                continue
            if name == "sort" and value == "newest":
                continue
            if isinstance(value, datetime):  # in UTC, marked so: staff zones differ
                value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
            out[name] = str(value)
        return out

    def query_string(self, **overrides: Any) -> str:
        return urlencode(self.as_params(**overrides))

    @property
    def active(self) -> bool:
        return any(getattr(self, n) for n in FILTER_FIELDS if n not in ("page_size", "sort"))


def parse_filters(
    args: Mapping[str, str], zone: tzinfo | None = None
) -> tuple[RunFilters, dict[str, str]]:
    """Validate the runs filters from request arguments (times without an offset are in
    `zone`, by default the signed-in staff member's).

    Returns the filters built from the valid fields and {field: message} for the rest.
    The caller must not query Temporal when the error dict is not empty.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    def text(name: str) -> str:
        return str(args.get(name) or "").strip()

    _parse_what(text, values, errors)
    for name in ("entity_type", "entity_id"):
        raw = text(name)
        if raw:
            if ID_RE.fullmatch(raw):
                values[name] = raw
            else:
                errors[name] = "letters, digits and _ . : - only (at most 128)"
    _parse_times(text, zone, values, errors)
    choices = (
        ("status", STATUSES, f"must be one of: {', '.join(STATUSES)}"),
        (
            "page_size",
            tuple(map(str, PAGE_SIZES)),
            f"must be one of: {', '.join(map(str, PAGE_SIZES))}",
        ),
        ("sort", SORTS, "must be newest or oldest"),
    )
    for name, allowed, message in choices:
        raw = text(name)
        if raw and raw in allowed:
            values[name] = int(raw) if name == "page_size" else raw
        elif raw:
            errors[name] = message
    return RunFilters(**values), errors


def _parse_what(text: Callable[[str], str], values: dict[str, Any], errors: dict[str, str]) -> None:
    """The search text, the domain and the workflow type (which must be the domain's)."""
    q = text("q")
    if q:
        try:
            search = parse_search(q)
        except SearchNotUnderstood as exc:
            errors["q"] = exc.message
        else:
            values["q"], values["search"] = search.text, search
    domain = text("domain")
    if domain:
        if domain in catalogue.domains():
            values["domain"] = domain
        else:
            errors["domain"] = f"unknown domain (known: {', '.join(catalogue.domains())})"
    wf_type = text("workflow_type")
    if wf_type:
        if wf_type not in workflow_types():
            errors["workflow_type"] = "unknown workflow type"
        elif domain and domain in catalogue.domains() and wf_type not in workflow_types(domain):
            errors["workflow_type"] = f"{wf_type} is not a {domain} workflow"
        else:
            values["workflow_type"] = wf_type


def _parse_times(
    text: Callable[[str], str],
    zone: tzinfo | None,
    values: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """The time bounds, read in the staff member's zone unless they carry an offset."""
    for name in ("started_after", "started_before", "closed_after"):
        raw = text(name)
        if raw:
            try:
                values[name] = times.parse_local(raw, zone)
            except ValueError as exc:
                errors[name] = str(exc)
    after, before = values.get("started_after"), values.get("started_before")
    if after and before and before <= after:
        errors["started_before"] = "must be later than 'started after'"


def resolve_search(filters: RunFilters) -> tuple[RunFilters, str | None]:
    """Complete the search with what the app database knows (`run_search.resolve_search`);
    the second value is a message for the search box when the search names nothing (then
    the caller must not query Temporal)."""
    if filters.search is None:
        return filters, None
    search, problem = run_search.resolve_search(filters.search)
    return replace(filters, search=search), problem


def _search_clause(search: RunSearch) -> str:
    """Any of the search's terms (each value quoted, so refused unless an identifier)."""
    parts = [
        f"(EntityType = {quote(kind)} AND EntityId = {quote(ident)})"
        for kind, ident in search.entities
    ]
    if search.any_entity_id:
        parts.append(f"EntityId = {quote(search.any_entity_id)}")
    if search.workflow_ids:
        parts.append(f"WorkflowId IN {_in_list(search.workflow_ids)}")
    if search.workflow_id_prefix:
        parts.append(f"WorkflowId STARTS_WITH {quote(search.workflow_id_prefix)}")
    if not parts:
        raise UnsafeValue("a search with no terms cannot be put into a visibility query")
    return "(" + " OR ".join(parts) + ")"


# Filter field -> the visibility attribute it must equal, and time filter -> condition.
_EQUALS = (
    ("domain", "EstuaryDomain"),
    ("workflow_type", "WorkflowType"),
    ("status", "ExecutionStatus"),
    ("entity_type", "EntityType"),
    ("entity_id", "EntityId"),
)
_TIMES = (
    ("started_after", "StartTime >="),
    ("started_before", "StartTime <"),
    ("closed_after", "CloseTime >="),
)


def build_query(
    filters: RunFilters, *, scope: str = "", include_status: bool = True, order: bool = False
) -> str:
    """The visibility query for validated filters.

    `include_status=False` leaves the status out (for the status counts, which group by
    it); `order=True` appends the requested ORDER BY StartTime.
    """
    clauses: list[str] = []
    if scope:
        clauses.append(f"({scope})")
    if filters.search is not None:
        clauses.append(_search_clause(filters.search))
    for name, attribute in _EQUALS:
        value = getattr(filters, name)
        if value and (include_status or name != "status"):
            clauses.append(f"{attribute} = {quote(value)}")
    for name, condition in _TIMES:
        moment = getattr(filters, name)
        if moment:
            clauses.append(f"{condition} {format_time(moment)}")
    query = " AND ".join(clauses)
    if order:
        query = f"{query} ORDER BY StartTime {SORTS[filters.sort]}".strip()
    return query


def runs_of_workflows_query(workflow_ids: Iterable[str], *, scope: str = "") -> str:
    """Every run (any status) of these workflow ids."""
    ids = sorted({w for w in workflow_ids if ID_RE.fullmatch(w)})
    if not ids:
        raise UnsafeValue("no valid workflow ids")
    query = f"WorkflowId IN {_in_list(ids)}"
    return f"({scope}) AND {query}" if scope else query


def runs_by_id_query(run_ids: Iterable[str], *, scope: str = "") -> str:
    """The runs with these run ids (for the live refresh of running rows)."""
    ids = [r for r in run_ids if RUN_ID_RE.fullmatch(r)]
    if not ids:
        raise UnsafeValue("no valid run ids")
    query = f"RunId IN {_in_list(ids)}"
    return f"({scope}) AND {query}" if scope else query


# --- page tokens --------------------------------------------------------------------------


def encode_page_token(token: bytes | None) -> str:
    if not token:
        return ""
    return base64.urlsafe_b64encode(token).decode("ascii").rstrip("=")


def decode_page_token(raw: str | None) -> bytes | None:
    """Temporal's opaque page token from the URL; ValueError if it is not one of ours."""
    if not raw:
        return None
    if len(raw) > MAX_PAGE_TOKEN_CHARS or not re.fullmatch(r"[A-Za-z0-9_-]+", raw):
        raise ValueError("the page link is damaged; start again from the first page")
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("the page link is damaged; start again from the first page") from None
