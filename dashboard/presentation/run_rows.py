"""Rows of the runs list, each rendered once for what it shows.

A runs page shows 50 rows (up to 200), and from one request to the next most of them are
the same: the row macro (`templates/runs/_row.html`) was half the page's rendering. Each
process keeps the HTML of the rows it rendered last (`MAX_ROWS`) under a key made of
every value the macro reads: the run's fields, its label (title and outcome), the staff
member's zone, the actor as shown, the "running for" text of a running run, whether it
is an out-of-band swap and the app's URL root. A change of any of them is another key, so
a kept row is the row the macro would render now; what is not asked again drops out.

The labels come from the app database (payouts, practitioners, bookings...), one query
per kind of entity. A process reuses a run's label for `RUN_LABELS_CACHE_SECONDS` (5 s;
0 in tests): within that time a renamed practitioner or a payout's amount may show as it
was, as the status counts beside the list may be 5 s old. The label is kept under the
run's status and close time as well as its ids, so a run that changes status (a payout
that is paid, a run that fails) is labelled afresh on the next page.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, request
from markupsafe import Markup

from dashboard.presentation.run_outcomes import RunLabel, run_labels
from dashboard.times import running_for, staff_zone, zone_label
from temporal_gateway.cache import LRUMap

MAX_ROWS = 4096
ROWS: LRUMap[Markup] = LRUMap(MAX_ROWS)
# label key -> (kept until, on the monotonic clock; the label)
LABELS: LRUMap[tuple[float, RunLabel]] = LRUMap(MAX_ROWS)


def label_key(run: Any, zone: str) -> tuple:
    """Everything a run's label reads from the run, and the viewer's zone (a title
    without a date in its business id gives the day the run started, in that zone)."""
    return (
        run.run_id,
        run.status,
        run.close_time,
        run.workflow_id,
        run.workflow_type,
        run.entity_type,
        run.entity_id,
        run.start_time,
        zone,
    )


def kept_labels(runs: list[Any], zone: str, keep_for: float) -> dict[str, RunLabel]:
    """The runs' labels by run id: those this process made less than `keep_for` seconds
    ago as they were, the others from the database (`run_labels`, one query per kind of
    entity, for the missing runs only)."""
    if keep_for <= 0:
        return run_labels(runs)
    now = time.monotonic()
    out: dict[str, RunLabel] = {}
    missing = []
    for run in runs:
        kept = LABELS.get(label_key(run, zone))
        if kept is not None and kept[0] > now:
            out[run.run_id] = kept[1]
        else:
            missing.append(run)
    if missing:
        fresh = run_labels(missing)
        for run in missing:
            label = out[run.run_id] = fresh[run.run_id]
            LABELS.put(label_key(run, zone), (now + keep_for, label))
    return out


def row_key(run: Any, label: RunLabel | None, actor: str, page: tuple) -> tuple:
    """Everything `run_row` reads, as one hashable value: the run's own values, its label,
    the actor as shown, and `page`, what is the same for every row of the request (the
    viewer's zone, the out-of-band flag, the URL root)."""
    shown_label = None
    if label is not None:
        outcome = label.outcome
        shown_label = (label.title.text, outcome.label if outcome else None, label.tone_class)
    running = running_for(run.start_time) if run.is_running and not run.close_time else None
    return (
        run.run_id,
        run.status,
        run.workflow_id,
        run.workflow_type,
        run.domain,
        run.entity_type,
        run.entity_id,
        run.start_time,
        run.close_time,
        actor,
        shown_label,
        running,
        page,
    )


def run_rows(runs: Iterable[Any], row: Callable[..., Markup], oob: bool = False) -> Markup:
    """The rows for `runs`, rendered by the `row` macro (imported with the page's context)
    only where this process has not rendered the same row already."""
    runs = list(runs)
    zone = zone_label(staff_zone())
    labels = kept_labels(runs, zone, float(current_app.config.get("RUN_LABELS_CACHE_SECONDS", 0)))
    format_actor = current_app.jinja_env.filters["actor"]
    page = (zone, oob, request.script_root)
    parts = []
    for run in runs:
        label = labels.get(run.run_id)
        key = row_key(run, label, format_actor(run.triggered_by), page)
        html = ROWS.get(key)
        if html is None:
            html = row(run, label, oob=oob)  # a macro of an autoescaping env: Markup
            ROWS.put(key, html)
        parts.append(html)
    return Markup("").join(parts)
