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

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from flask import current_app, request
from markupsafe import Markup

from dashboard.presentation.run_outcomes import RunLabel, run_labels
from dashboard.times import running_for, staff_zone

MAX_ROWS = 4096


class RowCache:
    """A bounded map of row keys to HTML, least recently shown dropped first (thread-safe:
    gunicorn's threads share it)."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._rows: OrderedDict[Hashable, Markup] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Markup | None:
        with self._lock:
            html = self._rows.get(key)
            if html is not None:
                self._rows.move_to_end(key)
            return html

    def put(self, key: Hashable, html: Markup) -> None:
        with self._lock:
            self._rows[key] = html
            self._rows.move_to_end(key)
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)


ROWS = RowCache()


def row_key(run: Any, label: RunLabel | None, *, zone: str, oob: bool) -> tuple:
    """Everything `run_row` reads, as one hashable value."""
    format_actor = current_app.jinja_env.filters["actor"]
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
        format_actor(run.triggered_by),
        shown_label,
        zone,
        running,
        oob,
        request.script_root,
    )


def run_rows(runs: Iterable[Any], row: Callable[..., Markup], oob: bool = False) -> Markup:
    """The rows for `runs`, rendered by the `row` macro (imported with the page's context)
    only where this process has not rendered the same row already."""
    runs = list(runs)
    labels = run_labels(runs)
    zone = staff_zone()
    zone_name = str(getattr(zone, "key", None) or zone)
    parts = []
    for run in runs:
        label = labels.get(run.run_id)
        key = row_key(run, label, zone=zone_name, oob=oob)
        html = ROWS.get(key)
        if html is None:
            html = row(run, label, oob=oob)  # a macro of an autoescaping env: Markup
            ROWS.put(key, html)
        parts.append(html)
    return Markup("").join(parts)
