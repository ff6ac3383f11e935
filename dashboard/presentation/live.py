"""Live pages: a page whose content can change while someone looks at it (something on it
runs or waits) refreshes its content with an htmx poll of its own URL, and stops once
nothing does.

`base.html` wraps every page's content in `<div id="live-region">`; a page that should be
live gives it `{{ live_attrs(active) }}`. While `active`, htmx asks the page's own URL
every LIVE_POLL_SECONDS (5 s) with `HX-Target: live-region`, and `base.html` then answers
with the region only (and the navigation's approvals count, swapped out of band). The
region answered carries `live_attrs` again, computed afresh: when nothing runs or waits
any more it has none, and the polling stops. `static/js/app.js` pauses every poll while
the tab is hidden, refreshes at once when it is shown again, and skips a refresh while
the person is typing in a form of the region (or has a form's fold open).

What a poll costs is what the page costs, minus the layout: approvals reads only the
app database (two small reads, and two for the navigation's count); home's Temporal
figures are the process-wide cached grouped count (HOME_COUNTS_CACHE_SECONDS, home polls
no faster), and its runs chart is kept as it is (hx-preserve); the practitioner, booking
and payout pages' run lists are read with `fresh_for=LIVE_POLL_SECONDS` on a refresh, so
every open tab of one console process shares one visibility list call per entity per
interval (Temporal's visibility limit is per namespace, some 10 calls a second by
default: that is 50 entities watched at once per console process at 5 s); their actions
panels add one describe call (not a visibility call) per business-keyed run, per tab.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, request
from markupsafe import Markup

LIVE_TARGET = "live-region"
DEFAULT_SECONDS = 5.0


def poll_seconds() -> float:
    return float(current_app.config.get("LIVE_POLL_SECONDS", DEFAULT_SECONDS))


def is_live_refresh() -> bool:
    """Is this request a live region's poll (answered with the region only)?"""
    return bool(request.headers.get("HX-Request")) and (
        request.headers.get("HX-Target") == LIVE_TARGET
    )


def live_fresh_for() -> float:
    """How old a Temporal list may be for this request: shared between tabs on a poll,
    read fresh on a page load."""
    return poll_seconds() if is_live_refresh() else 0.0


def live_attrs(active: bool, seconds: float | None = None) -> Markup:
    """The live region's attributes: an htmx poll of this page while `active`, none (and
    so no polling) otherwise."""
    if not active:
        return Markup('data-live="off"')
    every = seconds if seconds is not None else poll_seconds()
    text = f"{every:g}"
    return Markup(
        'data-live="on" hx-get="{}" hx-trigger="every {}s, live-resume" hx-target="this" '
        'hx-swap="outerHTML" hx-disinherit="*" data-live-seconds="{}"'
    ).format(request.full_path.rstrip("?"), text, text)


# Payout statuses during which a payout page (and its practitioner's) keeps changing.
PAYOUT_MOVING = ("creating", "pending_approval", "approved", "processing", "reconciling")


def runs_running(runs: Iterable[Any] | None) -> bool:
    """Does a page's run list hold a run still running?"""
    return any(getattr(run, "is_running", False) for run in runs or ())


def payouts_moving(payouts: Iterable[Any] | None) -> bool:
    return any(getattr(p, "status", None) in PAYOUT_MOVING for p in payouts or ())


def register_template_globals(app: Flask) -> None:
    app.add_template_global(live_attrs, "live_attrs")
    app.add_template_global(runs_running, "runs_running")
    app.add_template_global(payouts_moving, "payouts_moving")
    app.add_template_global(is_live_refresh, "is_live_refresh")
