"""Rows of the runs list, each rendered once for what it shows.

A runs page shows 50 rows (up to 200), and from one request to the next most of them are
the same: the row macro (`templates/runs/_row.html`) was half the page's rendering. Each
process keeps the HTML of the rows it rendered last (`MAX_ROWS`) under a key made of
every value the macro reads: the run's fields, its label (title and outcome), the staff
member's zone, the actor as shown, the "running for" text of a running run, whether it
is an out-of-band swap and the app's URL root. A change of any of them is another key, so
a kept row is the row the macro would render now; what is not asked again drops out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, request
from markupsafe import Markup

from dashboard.presentation.run_outcomes import RunLabel, run_labels
from dashboard.times import running_for, staff_zone, zone_label
from temporal_gateway.cache import LRUMap

MAX_ROWS = 4096
ROWS: LRUMap[Markup] = LRUMap(MAX_ROWS)


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
    labels = run_labels(runs)
    format_actor = current_app.jinja_env.filters["actor"]
    page = (zone_label(staff_zone()), oob, request.script_root)
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
