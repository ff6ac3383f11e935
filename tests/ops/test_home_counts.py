"""The home page asks Temporal at most 3 times whatever the number of runs (here 2: one
grouped count for the tiles, one list for the runs chart), and reuses the answers for a
few seconds, so many staff on the home page do not multiply the calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.cache import TTLCache
from dashboard.views.home import CHART_HOURS, bucket_runs
from temporal_gateway.gateway import RunInfo
from tests.conftest import unique_prefix
from tests.console.read_support import (
    counting_gateway_for,
    eventually,
    get,
    login,
    start_read_test,
)
from tests.console.read_workflows import ReadTestInput, read_test_worker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_home_page_costs_two_temporal_calls_then_none_while_cached(app, local_env):
    prefix = unique_prefix()
    gw = counting_gateway_for(app, local_env, prefix)
    client = login(app)
    app.config["HOME_COUNTS_CACHE_SECONDS"] = 0  # until visibility has caught up
    async with read_test_worker(local_env.client, prefix):
        running = await start_read_test(local_env.client, prefix, ReadTestInput(steps=1))
        failed = await start_read_test(
            local_env.client, prefix, ReadTestInput(steps=0, timer_seconds=0, fail_message="x")
        )
        with pytest.raises(Exception, match="Workflow execution failed"):
            await failed.result()

        def counted() -> str | None:
            html = client.get("/").get_data(as_text=True)
            chart = client.get("/charts/runs").get_data(as_text=True)
            ok = (
                'tile-running"><span class="num">1<' in html
                and 'tile-failed"><span class="num">1<' in html
                and "2 started, 1 failed" in chart
            )
            return html if ok else None

        await eventually(counted)

        clock = FakeClock()
        app.extensions["temporal_counts_cache"] = TTLCache(clock=clock)
        app.config["HOME_COUNTS_CACHE_SECONDS"] = 10
        gw.calls = 0
        html = (await get(client, "/")).get_data(as_text=True)
        chart = (await get(client, "/charts/runs")).get_data(as_text=True)
        assert gw.calls == 2  # one grouped count, one list: never one call per hour
        assert 'tile-running"><span class="num">1<' in html
        assert "2 started, 1 failed" in chart and "<svg" in chart
        assert 'data-testid="runs-chart-partial"' not in chart

        for _ in range(3):  # more staff loading the home page within the cache time
            await get(client, "/")
            await get(client, "/charts/runs")
        assert gw.calls == 2

        clock.now += 11  # the cached figures are now too old: asked again, once each
        await get(client, "/")
        await get(client, "/charts/runs")
        assert gw.calls == 4
        await running.terminate("test over")


def _run(start: datetime | None, status: str = "Completed", close: datetime | None = None):
    return RunInfo(
        workflow_id="w",
        run_id="r",
        workflow_type="T",
        status=status,
        task_queue="q",
        start_time=start,
        close_time=close,
        execution_time=None,
        history_length=1,
        domain=None,
        entity_type=None,
        entity_id=None,
        triggered_by=None,
    )


def test_runs_are_bucketed_by_the_hour_they_started_and_failed():
    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    first = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)  # 48 hourly bars up to 10:00-11:00
    runs = [
        _run(now - timedelta(minutes=5)),  # this hour
        _run(first),  # the first bar's first second
        _run(first - timedelta(seconds=1)),  # before the window: not counted
        # started before the window, failed in it: a failure, not a start
        _run(first - timedelta(hours=3), "Failed", now - timedelta(hours=2)),
        _run(now - timedelta(hours=1), "Running"),
    ]
    result = bucket_runs(runs, now, complete=False)
    assert len(result.starts) == CHART_HOURS and result.starts[0] == first
    assert result.started[-1] == 1 and result.started[0] == 1 and result.started[-2] == 1
    assert sum(result.started) == 3
    assert result.failed[-3] == 1 and sum(result.failed) == 1
    assert result.complete is False


def test_ttl_cache_keeps_values_not_failures():
    clock = FakeClock()
    cache = TTLCache(clock=clock)
    calls: list[str] = []

    def compute(value):
        def inner():
            calls.append("x")
            return value

        return inner

    assert cache.get_or_compute("k", 5, compute(1)) == 1
    assert cache.get_or_compute("k", 5, compute(2)) == 1
    clock.now += 6
    assert cache.get_or_compute("k", 5, compute(3)) == 3
    assert cache.get_or_compute("down", 5, compute(None)) is None
    assert cache.get_or_compute("down", 5, compute(4)) == 4  # a failure is not kept
    assert len(calls) == 4
