"""Home: what needs attention now, and how the last days went.

Temporal is asked at most twice per home page, whatever the number of runs: one grouped
count (running now, failed in 24 h) for the page, one list of the last 48 hours' runs for
the runs chart, which htmx loads after the page so slow counting never holds it up. Both
are cached for HOME_COUNTS_CACHE_SECONDS per process, so a room of staff on the home page
costs Temporal one pair of calls every few seconds; in the second half of that time they
are read again in the background, so no request waits for them once they are known. The
rest comes from the app database, so the page still says what needs attention when
Temporal is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from flask import Blueprint, current_app, render_template

from dashboard import times
from dashboard.gateway_calls import console_scope, temporal
from dashboard.permissions import require
from dashboard.presentation.charts import Series, bar_chart
from dashboard.visibility import format_time
from estuary.contracts.money import whole_units_text
from temporal_gateway.access import gateway
from temporal_gateway.cache import TTLCache
from temporal_gateway.gateway import RunInfo

bp = Blueprint("home", __name__)
T = TypeVar("T")

CHART_HOURS = 48
# Runs the chart reads in its one list call (the visibility store's largest page).
CHART_MAX_RUNS = 1000


def _hour_floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _and(scope: str, clause: str) -> str:
    return f"({scope}) AND {clause}" if scope else clause


# Background refreshes of the cached figures (each in an app context of its own).
_refreshes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="home-refresh")


def _cached(key: tuple, compute: Callable[[], T]) -> T:
    cache = current_app.extensions.setdefault("temporal_counts_cache", TTLCache())
    ttl = float(current_app.config.get("HOME_COUNTS_CACHE_SECONDS", 10))
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def in_background(refresh: Callable[[], None]) -> None:
        def run() -> None:
            with app.app_context():
                refresh()

        _refreshes.submit(run)

    return cache.get_or_compute(key, ttl, compute, refresh=in_background)


def temporal_counts(now: datetime) -> tuple[int, int] | None:
    """(running, failed in the last 24 h) in one grouped count, or None when Temporal
    cannot be asked."""
    gw = gateway()
    scope = console_scope()
    since = format_time(now - timedelta(hours=24))
    # Running runs have no close time, so one query covers both figures.
    query = _and(scope, f"(ExecutionStatus = 'Running' OR CloseTime >= {since})")
    by_status = _cached(("status", scope), lambda: temporal(gw.count_by_status, query))
    if by_status is None:
        return None
    return by_status.get("Running", 0), by_status.get("Failed", 0)


@dataclass(frozen=True)
class RunsPerHour:
    starts: list[datetime]
    started: list[int]
    failed: list[int]
    # False when the window held more runs than one list call reads: the bars then
    # cover only the latest CHART_MAX_RUNS runs.
    complete: bool


def bucket_runs(
    runs: list[RunInfo], now: datetime, hours: int = CHART_HOURS, *, complete: bool = True
) -> RunsPerHour:
    """Runs started and runs failed in each of the last `hours` hours (UTC)."""
    end = _hour_floor(now) + timedelta(hours=1)
    first = end - timedelta(hours=hours)
    started, failed = [0] * hours, [0] * hours

    def slot(when: datetime | None) -> int | None:
        if when is None or not first <= when < end:
            return None
        return int((when - first).total_seconds() // 3600)

    for run in runs:
        i = slot(run.start_time)
        if i is not None:
            started[i] += 1
        if run.status == "Failed":
            j = slot(run.close_time)
            if j is not None:
                failed[j] += 1
    starts = [first + timedelta(hours=i) for i in range(hours)]
    return RunsPerHour(starts, started, failed, complete)


def runs_per_hour(now: datetime, hours: int = CHART_HOURS) -> RunsPerHour:
    """The chart's figures from one list call: every run that started or closed in the
    window (up to CHART_MAX_RUNS of them)."""
    gw = gateway()
    scope = console_scope()
    since = format_time(_hour_floor(now) + timedelta(hours=1 - hours))
    query = _and(scope, f"(StartTime >= {since} OR CloseTime >= {since})")
    page = gw.list_runs(query, page_size=CHART_MAX_RUNS)
    return bucket_runs(page.runs, now, hours, complete=page.next_page_token is None)


@bp.get("/")
@require("view")
def index():
    from dashboard.presentation.overview import database_overview, open_flags, payout_volume_by_day

    now = datetime.now(UTC)
    volume = payout_volume_by_day(14, zone=times.staff_zone())
    currency = current_app.config.get("CURRENCY", "USD")
    money = current_app.jinja_env.filters["money"]
    volume_chart = bar_chart(
        [d.day.strftime("%b %d") for d in volume],
        [Series("paid out", [d.cents for d in volume], "s-money")],
        title=f"Payout volume per day ({times.zone_label()}), last 14 days",
        label_every=2,
        value_format=lambda c: money(c, currency),
        axis_format=lambda c: whole_units_text(c, currency),
        min_step=100,
    )
    return render_template(
        "home/index.html",
        overview=database_overview(),
        counts=temporal_counts(now),
        failed_since=(now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%MZ"),
        flags=open_flags(),
        volume=volume,
        volume_total=sum(d.cents for d in volume),
        volume_chart=volume_chart,
        currency=currency,
    )


@bp.get("/charts/runs")
@require("view")
def runs_chart():
    """The runs-per-hour chart (loaded by htmx after the home page)."""
    now = datetime.now(UTC)
    result = _cached(
        ("chart", console_scope(), _hour_floor(now)), lambda: temporal(runs_per_hour, now)
    )
    chart = None
    totals = (0, 0)
    complete = True
    if result is not None:
        zone = times.staff_zone()
        chart = bar_chart(
            [s.astimezone(zone).strftime("%d %H:%M") for s in result.starts],
            [
                Series("started", result.started, "s-started"),
                Series("failed", result.failed, "s-failed"),
            ],
            title=(
                f"Runs started and failed per hour, last {CHART_HOURS} hours "
                f"({times.zone_label(zone)})"
            ),
            label_every=6,
        )
        totals = (sum(result.started), sum(result.failed))
        complete = result.complete
    return render_template(
        "home/_runs_chart.html",
        chart=chart,
        totals=totals,
        hours=CHART_HOURS,
        complete=complete,
        max_runs=CHART_MAX_RUNS,
    )
