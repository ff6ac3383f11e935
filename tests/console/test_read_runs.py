"""The runs list against a real dev server: filters, status counts, paging with
Temporal's page token, business-key search, live refresh of running rows, and a bounded
number of Temporal calls whatever the page size. Also the home page's Temporal counts."""

from __future__ import annotations

import asyncio
import re

import pytest

from estuary.db import db
from estuary.models import Payout, Practitioner
from tests.conftest import unique_prefix
from tests.console.read_support import (
    counting_gateway_for,
    eventually,
    get,
    login,
    start_read_test,
)
from tests.console.read_workflows import ReadTestInput, StepSignal, read_test_worker

pytestmark = pytest.mark.live

ROW = 'data-testid="run-row"'


def _rows(html: str) -> int:
    return html.count(ROW)


async def test_list_filter_count_page_and_search(app, local_env):
    prefix = unique_prefix()
    gw = counting_gateway_for(app, local_env, prefix)
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        done = [
            await start_read_test(
                local_env.client,
                prefix,
                ReadTestInput(steps=0, timer_seconds=0),
                entity_id=f"77{i}",
                entity_type="booking",
            )
            for i in range(11)
        ]
        failing = await start_read_test(
            local_env.client,
            prefix,
            ReadTestInput(steps=0, timer_seconds=0, fail_message="card declined"),
            entity_id="900",
            entity_type="payout",
        )
        waiting = await start_read_test(
            local_env.client, prefix, ReadTestInput(steps=1), entity_id="901"
        )
        for handle in done:
            await handle.result()
        with pytest.raises(Exception, match="Workflow execution failed"):
            await failing.result()

        def all_listed() -> str | None:
            html = client.get("/runs?page_size=100").get_data(as_text=True)
            return html if _rows(html) == 13 else None

        html = await eventually(all_listed)
        assert 'data-testid="count-Completed">11<' in html
        assert 'data-testid="count-Failed">1<' in html
        assert 'data-testid="count-Running">1<' in html
        # a running row polls for itself; finished rows do not
        assert f"/runs/live?run={waiting.result_run_id}" in html

        # status filter
        html = (await get(client, "/runs?status=Failed")).get_data(as_text=True)
        assert _rows(html) == 1 and failing.id in html
        # entity filter, and the search box finds an entity id or a workflow id prefix
        html = (await get(client, "/runs?entity_type=payout&entity_id=900")).get_data(True)
        assert _rows(html) == 1 and failing.id in html
        html = (await get(client, "/runs?q=901")).get_data(as_text=True)
        assert _rows(html) == 1 and waiting.id in html
        html = (await get(client, f"/runs?q={done[3].id[:14]}")).get_data(as_text=True)
        assert _rows(html) >= 1 and done[3].id in html
        html = (await get(client, "/runs?q=booking:773")).get_data(as_text=True)
        assert _rows(html) == 1 and done[3].id in html
        # nothing started in the future
        html = (await get(client, "/runs?started_after=2999-01-01T00:00")).get_data(True)
        assert _rows(html) == 0 and 'data-testid="no-runs"' in html

        # a payout id typed in the search box finds its run through the app database
        with app.app_context():
            practitioner = Practitioner(name="P", email="p@x.test")
            db.session.add(practitioner)
            db.session.flush()
            payout = Payout(
                practitioner_id=practitioner.id,
                amount_cents=100,
                idempotency_key="k-1",
                workflow_id=done[5].id,
                requested_by="t",
            )
            db.session.add(payout)
            db.session.commit()
            payout_id = payout.id
        html = (await get(client, f"/runs?q=payout:{payout_id}")).get_data(as_text=True)
        assert _rows(html) == 1 and done[5].id in html

        # paging with Temporal's page token: 13 runs, 10 per page
        first = (await get(client, "/runs?page_size=10")).get_data(as_text=True)
        assert _rows(first) == 10
        next_link = re.search(
            r'href="([^"]+)" data-testid="next-page"|data-testid="next-page" href="([^"]+)"', first
        )
        assert next_link
        url = (next_link.group(1) or next_link.group(2)).replace("&amp;", "&")
        second = (await get(client, url)).get_data(as_text=True)
        assert _rows(second) == 3 and "Page 2" in second
        seen_first = set(re.findall(r'id="run-([0-9a-f-]+)"', first))
        seen_second = set(re.findall(r'id="run-([0-9a-f-]+)"', second))
        assert not seen_first & seen_second

        # bounded: the same number of Temporal calls for 10 rows and for 100 rows
        gw.calls = 0
        await get(client, "/runs?page_size=10")
        small = gw.calls
        gw.calls = 0
        await get(client, "/runs?page_size=100")
        assert gw.calls == small <= 3

        # live rows: the running row refreshes, and polling stops once nothing runs
        live = (await get(client, f"/runs/live?run={waiting.result_run_id}")).get_data(True)
        assert 'hx-swap-oob="true"' in live and 'hx-trigger="every 3s"' in live
        await waiting.signal("step", StepSignal(actor="ops@x.test"))
        await waiting.result()

        def stopped() -> str | None:
            body = client.get(f"/runs/live?run={waiting.result_run_id}").get_data(as_text=True)
            return body if "runs-live-stopped" in body else None

        live = await eventually(stopped)
        assert 'data-status="Completed"' in live and "hx-trigger" not in live


async def test_home_counts_running_and_failed(app, local_env):
    prefix = unique_prefix()
    app.config["HOME_COUNTS_CACHE_SECONDS"] = 0  # the test polls until visibility catches up
    counting_gateway_for(app, local_env, prefix)
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        running = await start_read_test(local_env.client, prefix, ReadTestInput(steps=1))
        failed = await start_read_test(
            local_env.client, prefix, ReadTestInput(steps=0, timer_seconds=0, fail_message="x")
        )
        with pytest.raises(Exception, match="Workflow execution failed"):
            await failed.result()

        def counted() -> str | None:
            html = client.get("/").get_data(as_text=True)
            ok = re.search(r'tile-running"><span class="num">1<', html) and re.search(
                r'tile-failed"><span class="num">1<', html
            )
            return html if ok else None

        html = await eventually(counted)
        assert "/runs?status=Running" in html
        assert "/runs?status=Failed&amp;closed_after=" in html
        chart = (await get(client, "/charts/runs")).get_data(as_text=True)
        assert "<svg" in chart and "2 started, 1 failed" in chart
        await running.terminate("test over")
    await asyncio.sleep(0)
