"""Benchmark: render the run detail page of a run with a ~20,000-event history.

Builds a real history on a Temporal dev server (started here on a free port, or the one
at --address): a bench workflow receives N signals (sent while no worker polls, so each
is one event) and then runs M activities (three events each). Then the console renders
the run detail through the Flask test client and the time is printed, with the time the
server-side summary alone takes. Then a second run that stays open is polled as its page
polls it (the live URL with the version the page shows), with nothing new and after new
signals. No timed test depends on this.

    .venv/bin/python bench/history_render.py            # ~20,000 events
    .venv/bin/python bench/history_render.py --signals 2000 --activities 500
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.history_workflow import BenchHistoryWorkflow, BenchInput, Tick, bench_step  # noqa: E402
from estuary.contracts.search_attributes import ALL_KEYS, run_attributes  # noqa: E402

BIN = Path(sys.executable).parent
FIRST_LOOKS = 7  # pairs (raw fetch, first look) whose median ratio is the figure
POLLS = 5  # live refreshes of the running run per case, the median the figure
LIVE_URL = re.compile(r'id="run-live"[^>]*hx-get="([^"]+)"')


async def send_ticks(handle, count: int) -> None:
    limit = asyncio.Semaphore(64)

    async def send(n: int) -> None:
        async with limit:
            await handle.signal(BenchHistoryWorkflow.tick, Tick(actor=f"bench-{n % 7}", n=n))

    await asyncio.gather(*(send(n) for n in range(count)))


async def start_running(client: Client, queue: str, signals: int, activities: int):
    """A run that stays open after its signals and activities, with a long history: no
    worker polls its queue while the signals arrive, so each signal is one event."""
    handle = await client.start_workflow(
        BenchHistoryWorkflow.run,
        BenchInput(signals=signals, activities=activities, stay_open=True),
        id=f"bench-running-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        search_attributes=run_attributes("payments", "bench", "2", "bench"),
    )
    started = time.monotonic()
    await send_ticks(handle, signals)
    print(f"running run: {signals} signals in {time.monotonic() - started:.1f}s")
    return handle


async def build_history(client: Client, queue: str, signals: int, activities: int):
    handle = await client.start_workflow(
        BenchHistoryWorkflow.run,
        BenchInput(signals=signals, activities=activities),
        id=f"bench-history-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        search_attributes=run_attributes("payments", "bench", "1", "bench"),
    )
    limit = asyncio.Semaphore(64)

    async def send(n: int) -> None:
        async with limit:
            await handle.signal(BenchHistoryWorkflow.tick, Tick(actor=f"bench-{n % 7}", n=n))

    started = time.monotonic()
    await asyncio.gather(*(send(n) for n in range(signals)))
    print(f"sent {signals} signals in {time.monotonic() - started:.1f}s")
    started = time.monotonic()
    # The first workflow task applies every signal at once (thousands of payloads): on a
    # slow machine that takes longer than the SDK's 2 s deadlock detection, which would
    # fail the task again on every retry. This fixture's worker turns the detection off.
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BenchHistoryWorkflow],
        activities=[bench_step],
        debug_mode=True,
    ):
        result = await handle.result()
    print(f"workflow finished in {time.monotonic() - started:.1f}s: {result}")
    return handle


def raw_history_seconds(address: str, namespace: str, workflow_id: str, run_id: str) -> float:
    """The anchor: the whole history read with the bare client, page by page, no summary."""

    async def fetch() -> float:
        client = await Client.connect(address, namespace=namespace)
        started = time.monotonic()
        await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        return time.monotonic() - started

    return asyncio.run(fetch())


def render(address: str, namespace: str, prefix: str, workflow_id: str, run_id: str) -> None:
    from bench.console import signed_in_console

    with signed_in_console(address, namespace, prefix) as (app, client):
        render_pages(app, client, address, namespace, workflow_id, run_id)


def render_pages(app, client, address, namespace, workflow_id: str, run_id: str) -> None:
    from dashboard.run_reader import read_timeline, run_histories

    url = f"/runs/{workflow_id}/{run_id}"
    client.get("/runs")  # the process's first Temporal call connects the gateway
    ratios = []
    for attempt in range(1, FIRST_LOOKS + 1):
        run_histories.clear()  # a first look: the whole history is read
        anchor = raw_history_seconds(address, namespace, workflow_id, run_id)
        started = time.monotonic()
        response = client.get(url)
        elapsed = time.monotonic() - started
        size = len(response.get_data())
        ratios.append(elapsed / anchor)
        print(
            f"GET {url}: {response.status_code}, {size / 1024:.0f} KiB of HTML, "
            f"{elapsed:.2f}s | raw history fetch {anchor:.2f}s | {elapsed / anchor:.2f}x "
            f"(first look {attempt})"
        )
    print(
        f"run page: median {statistics.median(ratios):.2f}x the raw history fetch over "
        f"{len(ratios)} pairs (target 1.3x); load average {os.getloadavg()[0]:.1f}"
    )
    started = time.monotonic()
    client.get(url)
    print(f"reload of the closed run (history already read): {time.monotonic() - started:.2f}s")
    with app.test_request_context():
        started = time.monotonic()
        timeline = read_timeline(app.extensions["temporal"], workflow_id, run_id)
        print(
            f"history read + summary alone: {time.monotonic() - started:.2f}s for "
            f"{timeline.event_count} events ({len(timeline.entries())} timeline rows shown)"
        )
    started = time.monotonic()
    response = client.get(f"{url}/events")
    print(f"raw events, first page: {response.status_code} in {time.monotonic() - started:.2f}s")


def poll_running(address: str, namespace: str, prefix: str, handle_id: str, run_id: str,
                 send_more) -> None:  # fmt: skip
    """The live refresh of a running run with a long history: what one poll costs."""
    from bench.console import signed_in_console

    with signed_in_console(address, namespace, prefix) as (app, client):
        gw = app.extensions["bench_gateway"]
        url = f"/runs/{handle_id}/{run_id}"
        started = time.monotonic()
        first = client.get(url)
        print(
            f"running run, first look: {first.status_code} in {time.monotonic() - started:.2f}s, "
            f"{gw.calls} Temporal calls"
        )
        # Polled as the page polls: its own live URL, which says the version it shows
        # (`seen`); a 204 when nothing shown changed, else the view and its next URL.
        live_url = html.unescape(LIVE_URL.search(first.get_data(as_text=True))[1])
        for label, before in (("nothing new", None), ("10 new signals", send_more)):
            times, calls, statuses = [], [], set()
            for _ in range(POLLS):
                if before:
                    before()
                gw.calls = 0
                started = time.monotonic()
                response = client.get(live_url)
                times.append(time.monotonic() - started)
                calls.append(gw.calls)
                statuses.add(response.status_code)
                if response.status_code == 200:
                    body = response.get_data(as_text=True)
                    live_url = html.unescape(LIVE_URL.search(body)[1])
            print(
                f"live refresh, {label}: {'/'.join(map(str, sorted(statuses)))} in "
                f"{statistics.median(times) * 1000:.0f} ms (median of {POLLS} polls; "
                f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms), at most {max(calls)} "
                "Temporal calls (target: <= 100 ms, <= 2 calls; history never re-read)"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=9_000)
    parser.add_argument("--activities", type=int, default=3_650)
    parser.add_argument(
        "--live-signals", type=int, default=9_000, help="signals to the running run polled"
    )
    parser.add_argument("--address", default=None, help="use this Temporal server")
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    env = None
    if args.address:
        client = await Client.connect(args.address)
    else:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"),
            search_attributes=ALL_KEYS,
            dev_server_log_level="error",
        )
        client = env.client
    try:
        handle = await build_history(client, f"{prefix}bench", args.signals, args.activities)
        desc = await handle.describe()
        print(f"history length: {desc.history_length} events")
        address = client.service_client.config.target_host
        await asyncio.to_thread(render, address, client.namespace, prefix, handle.id, desc.run_id)
        queue = f"{prefix}bench-live"
        running = await start_running(client, queue, args.live_signals, args.activities)
        loop = asyncio.get_running_loop()

        async def settle(at_least: int = 0) -> None:
            """Until the run has done what it was sent and waits (history stops growing)."""
            last = -1
            while (length := (await running.describe()).history_length) != last or (
                length < at_least
            ):
                last = length
                await asyncio.sleep(1.0)

        def send_more() -> None:
            asyncio.run_coroutine_threadsafe(send_ticks(running, 10), loop).result()
            asyncio.run_coroutine_threadsafe(settle(), loop).result()

        # A worker answers the progress query, as on a real console.
        async with Worker(
            client,
            task_queue=queue,
            workflows=[BenchHistoryWorkflow],
            activities=[bench_step],
            debug_mode=True,  # as in build_history
        ):
            # every signal, and three events per activity once the worker has run them
            await settle(args.live_signals + 3 * args.activities)
            print(f"running run: {(await running.describe()).history_length} events")
            await asyncio.to_thread(
                poll_running, address, client.namespace, prefix, running.id,
                running.result_run_id, send_more,
            )  # fmt: skip
            await running.terminate("bench over")
    finally:
        if env is not None:
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see bench/batch_payout.py: the SDK runtime may abort interpreter exit
