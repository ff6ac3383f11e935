"""Run detail against a real dev server: status, progress, a timeline built from the
history (activities with attempts and last failure, timers, signals and updates with
their sender), live refresh while running, raw events and the JSON download."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from dashboard.views import runs as runs_view
from tests.conftest import gateway_for, unique_prefix
from tests.console.read_support import (
    counting_gateway_for,
    eventually,
    get,
    login,
    start_read_test,
)
from tests.console.read_workflows import NoteUpdate, ReadTestInput, StepSignal, read_test_worker

pytestmark = pytest.mark.live


async def test_detail_follows_a_running_run(app, local_env, monkeypatch):
    prefix = unique_prefix()
    gateway_for(app, local_env, prefix)
    client = login(app, "viewer")
    async with read_test_worker(local_env.client, prefix):
        handle = await start_read_test(local_env.client, prefix, ReadTestInput(steps=2, label="x"))
        run_id = handle.result_run_id
        url = f"/runs/{handle.id}/{run_id}"

        page = await get(client, url)
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "ReadSideTestWorkflow" in html
        assert 'data-status="Running"' in html
        # polls itself while running, saying which version of the view it has
        assert f'hx-get="/runs/{handle.id}/{run_id}/live?seen=' in html
        assert "waiting for step 1" in html

        await handle.signal("step", StepSignal(actor="ops@estuary.test"))
        await handle.execute_update("note", NoteUpdate(actor="lead@estuary.test", text="hi"))

        def step_one_done() -> str | None:
            body = client.get(f"{url}/live").get_data(as_text=True)
            return body if "waiting for step 2" in body else None

        html = await eventually(step_one_done)
        assert "Signal step" in html and "ops@estuary.test" in html
        assert "Update note" in html and "lead@estuary.test" in html
        assert "Activity read_test_record_step" in html
        assert "step 1 flaked once" in html  # the first attempt's failure
        assert "attempts 2" in html

        await handle.signal("step", StepSignal(actor="ops@estuary.test"))
        result = await handle.result()
        assert result.steps_done == ["step 1", "step 2"]

    html = (await get(client, f"{url}/live")).get_data(as_text=True)
    assert 'data-status="Completed"' in html
    assert "hx-trigger" not in html  # refresh stops once the run closed
    assert "Timer" in html and "fired" in html
    assert "Workflow completed" in html
    assert "step 2" in html  # the result

    monkeypatch.setattr(runs_view, "EVENTS_PAGE_SIZE", 10)
    events = await get(client, f"/runs/{handle.id}/{run_id}/events")
    assert events.status_code == 200
    first = events.get_data(as_text=True)
    # Temporal pages histories in whole event batches: about, not exactly, 10 a page
    assert "WorkflowExecutionStarted" in first and 10 <= first.count("<details") < 30
    token = re.search(r'data-testid="next-page" href="[^"]*events\?page=([A-Za-z0-9_-]+)"', first)
    assert token, "a second page of events"
    second = (await get(client, f"/runs/{handle.id}/{run_id}/events?page={token[1]}")).get_data(
        as_text=True
    )
    assert "WorkflowExecutionStarted" not in second and second.count("<details") >= 1

    download = await get(client, f"/runs/{handle.id}/{run_id}/history.json")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    body = json.loads(download.get_data(as_text=True))
    assert body["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert len(body["events"]) > 10


async def test_detail_links_child_workflows(app, local_env):
    prefix = unique_prefix()
    gateway_for(app, local_env, prefix)
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        handle = await start_read_test(
            local_env.client, prefix, ReadTestInput(steps=0, with_child=True, timer_seconds=0)
        )
        await handle.result()
    html = (await get(client, f"/runs/{handle.id}/{handle.result_run_id}")).get_data(True)
    assert "Child workflow ReadSideTestWorkflow" in html
    child = await local_env.client.get_workflow_handle(f"{handle.id}-child").describe()
    assert f'href="/runs/{handle.id}-child/{child.run_id}"' in html
    child_html = (await get(client, f"/runs/{handle.id}-child/{child.run_id}")).get_data(True)
    assert f'href="/runs/{handle.id}/{handle.result_run_id}"' in child_html  # parent link


async def test_detail_shows_a_pending_activity_between_attempts(app, local_env):
    prefix = unique_prefix()
    gateway_for(app, local_env, prefix)
    client = login(app)
    async with read_test_worker(local_env.client, prefix):
        handle = await start_read_test(
            local_env.client, prefix, ReadTestInput(steps=1, failing_attempts=2)
        )
        await handle.signal("step", StepSignal(actor="ops@estuary.test"))
        url = f"/runs/{handle.id}/{handle.result_run_id}"

        def pending() -> str | None:
            html = client.get(url).get_data(as_text=True)
            return html if "step 1 attempt 1 failed" in html else None

        html = await eventually(pending)
        assert 'data-testid="pending-activities"' in html
        assert "read_test_record_step" in html
        await handle.result()
    html = (await get(client, url)).get_data(as_text=True)
    assert 'data-testid="pending-activities"' not in html
    assert "attempts 3" in html and "step 1 attempt 2 failed" in html


async def settled_length(handle) -> int:
    """The history length once the run has stopped adding events (it waits for a signal)."""
    last = -1
    while True:
        length = (await handle.describe()).history_length
        if length == last:
            return length
        last = length
        await asyncio.sleep(0.3)


async def test_live_refresh_reads_only_new_events(app, local_env):
    """The first look reads the whole history; a poll with nothing new costs one call
    (the newest events, none), and a poll after new events costs two (those events and
    the progress query), never the history again."""
    prefix = unique_prefix()
    gw = counting_gateway_for(app, local_env, prefix)
    reads: list[tuple[int, int]] = []  # (first event id, events) per history call
    real_history_events, real_newest = gw.history_events, gw.newest_history_events
    real_pages = gw.history_pages

    def history_events(*args, **kwargs):
        events, token = real_history_events(*args, **kwargs)
        reads.append((events[0].event_id if events else 0, len(events)))
        return events, token

    def history_pages(*args, **kwargs):
        for events in real_pages(*args, **kwargs):
            reads.append((events[0].event_id if events else 0, len(events)))
            yield events

    def newest_history_events(*args, **kwargs):
        events = real_newest(*args, **kwargs)
        assert events is not None  # the dev server reads histories backwards
        reads.append((events[0].event_id if events else 0, len(events)))
        return events

    gw.history_events = history_events
    gw.history_pages = history_pages
    gw.newest_history_events = newest_history_events
    client = login(app, "viewer")
    async with read_test_worker(local_env.client, prefix):
        handle = await start_read_test(local_env.client, prefix, ReadTestInput(steps=3, label="y"))
        url = f"/runs/{handle.id}/{handle.result_run_id}"

        def waiting_for(step: int):
            def check() -> str | None:
                body = client.get(f"{url}/live").get_data(as_text=True)
                return body if f"waiting for step {step}" in body else None

            return check

        await eventually(waiting_for(1))
        length = await settled_length(handle)
        await get(client, f"{url}/live")
        assert sum(n for _, n in reads) == length  # every event read once, none twice

        reads.clear()
        gw.calls = 0
        idle = await get(client, f"{url}/live")
        assert "waiting for step 1" in idle.get_data(as_text=True)
        # One reverse read that found nothing new: no describe, no query.
        assert gw.calls == 1 and reads == [(0, 0)]
        # Asked with the version it already has, it sends nothing to swap.
        seen = re.search(r"live\?seen=([0-9a-f]+)", idle.get_data(as_text=True))[1]
        unchanged = await get(client, f"{url}/live?seen={seen}")
        assert unchanged.status_code == 204 and unchanged.get_data() == b""

        await handle.signal("step", StepSignal(actor="ops@estuary.test"))
        html = await eventually(waiting_for(2))
        assert "ops@estuary.test" in html and "Activity read_test_record_step" in html
        new_length = await settled_length(handle)
        await get(client, f"{url}/live")
        # Only events after the first look were read, each once.
        found = [(first, n) for first, n in reads if n]
        assert found and all(first > length for first, _ in found)
        assert sum(n for _, n in found) == new_length - length

        gw.calls = 0
        reads.clear()
        await get(client, f"{url}/live")
        assert gw.calls == 1 and reads == [(0, 0)]

        # A poll after new events (a signal, the workflow task it woke, an activity):
        # the events and the progress query, two calls.
        await handle.signal("step", StepSignal(actor="ops@estuary.test"))
        for _ in range(100):  # until the workflow has recorded step 2 and waits again
            if "step 3" in str(await handle.query("progress")):
                break
            await asyncio.sleep(0.2)
        await settled_length(handle)
        gw.calls = 0
        polled = await get(client, f"{url}/live?seen={seen}")
        assert polled.status_code == 200  # changed since: the view again
        assert "waiting for step 3" in polled.get_data(as_text=True)
        assert gw.calls == 2
        await handle.terminate("test over")
