"""Entries of a run's timeline, each rendered again only when what it shows changed.

The run page shows up to 200 timeline entries, and its live refresh (every 2 s while the
run is open) sends them again whenever anything changed: a new signal or an activity that
completed changes one or two entries, not two hundred. The entry macro
(`templates/runs/_timeline_entry.html`) was most of a refresh's time on a long history.
Each entry keeps the HTML it was last rendered to, on the entry itself (the timeline's
rows live as long as the process keeps the run's history, `dashboard.run_reader`), with
what it was rendered from: every field of the row, the child's title for a child
workflow, the staff member's zone and the app's URL root. Any change of those renders
the entry again, so a kept entry is the entry the macro would render now.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

from flask import g, request
from markupsafe import Markup

from dashboard.times import staff_zone, zone_label

_SHOWN = "_shown"  # the attribute an entry keeps (what it was rendered from, its HTML)


_READERS: dict[type, Callable[[Any], tuple]] = {}


def _fields(row: Any) -> tuple:
    """Every field of a row (a dataclass), as a tuple."""
    read = _READERS.get(type(row))
    if read is None:
        # Every row type has several fields, so the getter returns a tuple.
        read = operator.attrgetter(*(f.name for f in dataclasses.fields(row)))
        _READERS[type(row)] = read
    return read(row)


def _page() -> tuple[str, str]:
    """What every entry of this response is rendered for: the zone, the URL root."""
    page = g.get("timeline_page")
    if page is None:
        page = g.timeline_page = (zone_label(staff_zone()), request.script_root)
    return page


def timeline_entry_html(row: Any, entry: Callable[..., Markup], child_title: str | None) -> Markup:
    """`row` rendered by the `entry` macro, or the HTML it was rendered to last if none of
    what the macro reads has changed since."""
    shown_from = (_fields(row), child_title, _page())
    kept = row.__dict__.get(_SHOWN)
    if kept is not None and kept[0] == shown_from:
        return kept[1]
    html = entry(row, child_title)  # a macro of an autoescaping env: Markup
    row.__dict__[_SHOWN] = (shown_from, html)
    return html


def register(app: Any) -> None:
    app.add_template_global(timeline_entry_html, "timeline_entry_html")
