"""Benchmark: the runs page against the raw visibility list call, on many runs.

Starts N runs on a Temporal dev server (started here on a free port) with the console's
search attributes and no worker, so they stay open; then, in interleaved rounds (`--pairs`
of them), times the bare client's first page of `EstuaryDomain = 'payments'` (the anchor:
`list_workflows`, which also decodes each run into the SDK's `WorkflowExecution`), the
bare service call under it (`ListWorkflowExecutions` alone, no decoding: the lower bound
of any list) and the console's `GET /runs?domain=payments&page_size=50` through the Flask
test client (list + status counts, as a person sees it). Prints each round and the median
ratios against both.

    .venv/bin/python bench/runs_page.py               # 10,000 runs
    .venv/bin/python bench/runs_page.py --runs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from estuary.contracts.search_attributes import ALL_KEYS, run_attributes  # noqa: E402

BIN = Path(sys.executable).parent
PAGE_SIZE = 50


async def start_runs(client: Client, prefix: str, runs: int) -> None:
    limit = asyncio.Semaphore(64)

    async def start(n: int) -> None:
        async with limit:
            await client.start_workflow(
                "PractitionerPayoutWorkflow",
                {"practitioner_id": n, "requested_by": "bench@estuary.local"},
                id=f"{prefix}payout-{n}",
                task_queue=f"{prefix}payments",
                search_attributes=run_attributes("payments", "practitioner", n, "bench"),
            )

    started = time.monotonic()
    await asyncio.gather(*(start(n) for n in range(1, runs + 1)))
    print(f"started {runs} runs in {time.monotonic() - started:.1f}s", flush=True)


def measure(address: str, namespace: str, prefix: str, runs: int, pairs: int) -> None:
    from bench.console import signed_in_console

    query = f"EstuaryDomain = 'payments' AND TaskQueue STARTS_WITH '{prefix}'"

    async def raw_list(client: Client) -> float:
        started = time.monotonic()
        iterator = client.list_workflows(query, page_size=PAGE_SIZE)
        await iterator.fetch_next_page()
        return time.monotonic() - started

    async def service_call(client: Client) -> float:
        started = time.monotonic()
        await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=client.namespace, query=query, page_size=PAGE_SIZE
            ),
            retry=True,
        )
        return time.monotonic() - started

    # One loop of the bench's own, so each anchor call sits right beside its page load.
    loop = asyncio.new_event_loop()
    bare = loop.run_until_complete(Client.connect(address, namespace=namespace))
    # Visibility lags writes by about a second on the dev server; wait until all are listed.
    for _ in range(120):
        counted = loop.run_until_complete(bare.count_workflows(f"TaskQueue STARTS_WITH '{prefix}'"))
        if counted.count >= runs:
            break
        time.sleep(0.5)
    with signed_in_console(address, namespace, prefix) as (_app, client):
        url = f"/runs?domain=payments&page_size={PAGE_SIZE}"
        client.get(url)  # the process's first request connects the gateway
        loop.run_until_complete(raw_list(bare))
        loop.run_until_complete(service_call(bare))
        ratios, floor_ratios = [], []
        for n in range(1, pairs + 1):
            anchor = loop.run_until_complete(raw_list(bare))
            floor = loop.run_until_complete(service_call(bare))
            started = time.monotonic()
            response = client.get(url)
            elapsed = time.monotonic() - started
            ratios.append(elapsed / anchor)
            floor_ratios.append(elapsed / floor)
            if n <= 3 or n == pairs:
                print(
                    f"round {n}: GET {url} {response.status_code} {elapsed * 1000:.0f} ms | "
                    f"raw list {anchor * 1000:.0f} ms ({elapsed / anchor:.2f}x) | "
                    f"service call {floor * 1000:.0f} ms ({elapsed / floor:.2f}x)"
                )
    print(
        f"runs page, {PAGE_SIZE} rows of {runs} runs: median "
        f"{statistics.median(ratios):.2f}x the raw list call (target 1.3x), "
        f"{statistics.median(floor_ratios):.2f}x the bare service call"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    try:
        await start_runs(env.client, prefix, args.runs)
        address = env.client.service_client.config.target_host
        await asyncio.to_thread(
            measure, address, env.client.namespace, prefix, args.runs, args.pairs
        )
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see bench/batch_payout.py: the SDK runtime may abort interpreter exit
