"""Home: what needs attention now, and how the last days went.

Counts from Temporal (running, failed in 24 h) take two calls; the rest come from the app
database, so the page still says what needs attention when Temporal is unreachable. The
runs chart is loaded by htmx after the page, so slow counting never holds the page up.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from flask import Blueprint, current_app, render_template
from temporalio.client import Client

from dashboard.gateway import gateway
from dashboard.permissions import require
from dashboard.services.charts import Series, bar_chart
from dashboard.views.runs import console_scope, temporal
from dashboard.visibility import format_time

bp = Blueprint("home", __name__)

CHART_HOURS = 48
COUNT_CONCURRENCY = 12


def _hour_floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _and(scope: str, clause: str) -> str:
    return f"({scope}) AND {clause}" if scope else clause


def temporal_counts(now: datetime) -> tuple[int, int] | None:
    """(running, failed in the last 24 h), or None when Temporal cannot be asked."""
    gw = gateway()
    scope = console_scope()
    by_status = temporal(gw.count_by_status, scope)
    if by_status is None:
        return None
    since = format_time(now - timedelta(hours=24))
    failed = temporal(gw.count, _and(scope, f"ExecutionStatus = 'Failed' AND CloseTime >= {since}"))
    if failed is None:
        return None
    return by_status.get("Running", 0), failed


def runs_per_hour(
    now: datetime, hours: int = CHART_HOURS
) -> tuple[list[datetime], list[int], list[int]]:
    """Runs started and runs failed in each of the last `hours` hours (one gateway call:
    the counts run concurrently on the gateway loop)."""
    scope = console_scope()
    end = _hour_floor(now) + timedelta(hours=1)
    starts = [end - timedelta(hours=hours - i) for i in range(hours)]
    queries: list[str] = []
    for start in starts:
        window_start, window_end = format_time(start), format_time(start + timedelta(hours=1))
        queries.append(_and(scope, f"StartTime >= {window_start} AND StartTime < {window_end}"))
        queries.append(
            _and(
                scope,
                f"ExecutionStatus = 'Failed' AND CloseTime >= {window_start} "
                f"AND CloseTime < {window_end}",
            )
        )
    gw = gateway()

    async def call(client: Client) -> list[int]:
        limit = asyncio.Semaphore(COUNT_CONCURRENCY)

        async def count(query: str) -> int:
            async with limit:
                result = await client.count_workflows(query, rpc_timeout=gw.rpc_timeout())
                return result.count

        return list(await asyncio.gather(*(count(q) for q in queries)))

    counts = gw.run(call, timeout=gw.timeout * 3)
    return starts, counts[0::2], counts[1::2]


@bp.get("/")
@require("view")
def index():
    from dashboard.services.overview import database_overview, open_flags, payout_volume_by_day

    now = datetime.now(UTC)
    volume = payout_volume_by_day(14)
    currency = current_app.config.get("CURRENCY", "USD")
    money = current_app.jinja_env.filters["money"]
    volume_chart = bar_chart(
        [d.day.strftime("%b %d") for d in volume],
        [Series("paid out", [d.cents for d in volume], "s-money")],
        title="Payout volume per day, last 14 days",
        label_every=2,
        value_format=lambda c: money(c, currency),
        axis_format=lambda c: f"{c // 100:,}",
    )
    return render_template(
        "home/index.html",
        overview=database_overview(),
        counts=temporal_counts(now),
        failed_since=(now - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"),
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
    result = temporal(runs_per_hour, now)
    chart = None
    totals = (0, 0)
    if result is not None:
        starts, started, failed = result
        chart = bar_chart(
            [s.strftime("%d %H:00") for s in starts],
            [Series("started", started, "s-started"), Series("failed", failed, "s-failed")],
            title=f"Runs started and failed per hour, last {CHART_HOURS} hours (UTC)",
            label_every=6,
        )
        totals = (sum(started), sum(failed))
    return render_template("home/_runs_chart.html", chart=chart, totals=totals, hours=CHART_HOURS)
