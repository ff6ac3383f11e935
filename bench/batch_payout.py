"""Benchmark: a batch payout of N practitioners against the bare-SDK anchor, same server.

Each round seeds a fresh app database with N active practitioners, each with a balance
below the approval threshold and a payout destination, starts the real payments worker
(`flask start-worker --domains payments`, a process of its own) and runs the real
BatchPractitionerPayoutWorkflow to its end. The anchor (bench/anchor.py: parent + N
children + three no-op activities each, in its own worker process) runs on the same dev
server in the same round; the order alternates between rounds so neither always runs on
a warmer machine. Printed per round: payouts per second and the worker process's CPU
seconds (user + system, all threads, from /proc), and the ratios ours/anchor.

    .venv/bin/python bench/batch_payout.py                      # 2,000 practitioners, 3 rounds
    .venv/bin/python bench/batch_payout.py --practitioners 200 --rounds 1
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/batch_payout.py                  # app database on PostgreSQL

With BENCH_DATABASE_URL each round creates its own database on that server and drops it
afterwards. No timed test depends on this; it only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from bench.anchor import AnchorBatchInput  # noqa: E402
from estuary.contracts.search_attributes import ALL_KEYS, run_attributes  # noqa: E402
from temporal_gateway.codec import data_converter, new_key_entry  # noqa: E402

BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BALANCE_CENTS = 10_000  # below the default approval threshold (500.00)


@dataclass
class Measure:
    seconds: float
    cpu_seconds: float
    paid: int

    def rate(self) -> float:
        return self.paid / self.seconds if self.seconds else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Database:
    """A fresh app database for one round: an SQLite file, or a PostgreSQL database."""

    def __init__(self, workdir: Path) -> None:
        base = os.environ.get("BENCH_DATABASE_URL")
        self._admin_url = None
        if base:
            from sqlalchemy.engine import make_url

            name = f"bench_{uuid.uuid4().hex[:10]}"
            self._admin_url = base
            self._name = name
            self._run_admin(f'CREATE DATABASE "{name}"')
            self.url = make_url(base).set(database=name).render_as_string(hide_password=False)
        else:
            self.url = f"sqlite:///{workdir / 'bench.db'}"

    def _run_admin(self, statement: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(statement))
        engine.dispose()

    def drop(self) -> None:
        if self._admin_url:
            self._run_admin(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


# One payload key for the bench's worker and its own client: payloads are encrypted.
PAYLOAD_KEYS = new_key_entry("bench")


def app_env(db_url: str, address: str, prefix: str, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PAYLOAD_KEYS": PAYLOAD_KEYS,
        "FLASK_APP": "estuary_ops",
        "DATABASE_URL": db_url,
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
        "ESTUARY_VAR_DIR": str(workdir),
        "PYTHONUNBUFFERED": "1",
    }


def seed(env: dict[str, str], practitioners: int) -> None:
    """Migrate, then N active practitioners each owed BALANCE_CENTS (one ledger credit)."""
    subprocess.run(
        [str(BIN / "flask"), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    code = f"""
from estuary_ops import create_app
from estuary.db import db
from estuary.models import Practitioner
from estuary.services import ledger
app = create_app()
with app.app_context():
    for n in range({practitioners}):
        p = Practitioner(name=f"Bench {{n}}", email=f"bench{{n}}@bench.local", status="active",
                         accepts_bookings=True, payout_destination=f"acct-bench-{{n}}")
        db.session.add(p)
        db.session.flush()
        ledger.post(f"bench-earning-{{p.id}}", "bench_earning", [
            ledger.Leg(ledger.available_account(p.id), {BALANCE_CENTS}),
            ledger.Leg(ledger.PLATFORM_CLEARING, -{BALANCE_CENTS}),
        ])
    db.session.commit()
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


async def wait_for_poller(client: Client, task_queue: str, proc: subprocess.Popen) -> None:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}")
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        if response.pollers:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no worker polled {task_queue}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def run_ours(bare: Client, address: str, practitioners: int, workdir: Path) -> Measure:
    # The app's data converter (payload encryption), as the console and CLI use it.
    client = await Client.connect(
        address,
        namespace=bare.namespace,
        data_converter=data_converter({"PAYLOAD_KEYS": PAYLOAD_KEYS}),
    )
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    database = Database(workdir)
    env = app_env(database.url, address, prefix, workdir)
    worker = None
    try:
        seed(env, practitioners)
        worker = subprocess.Popen(
            [str(BIN / "flask"), "start-worker", "--domains", "payments"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / f"{prefix}worker.log", "w"),  # noqa: SIM115
        )
        await wait_for_poller(client, f"{prefix}payments", worker)
        cpu_before = cpu_seconds(worker.pid)
        started = time.monotonic()
        handle = await client.start_workflow(
            "BatchPractitionerPayoutWorkflow",
            {"min_amount_cents": 100, "requested_by": "bench@estuary.local"},
            id=f"{prefix}batch",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "batch", "bench", "bench"),
        )
        result = await handle.result()
        seconds = time.monotonic() - started
        cpu = cpu_seconds(worker.pid) - cpu_before
        paid = int(result.get("paid_count", 0)) if isinstance(result, dict) else 0
        if paid != practitioners:
            lines = result.get("lines", [])[:3] if isinstance(result, dict) else result
            print(f"  warning: our batch paid {paid} of {practitioners}; first lines: {lines}")
        return Measure(seconds, cpu, paid)
    finally:
        if worker is not None:
            stop(worker)
        database.drop()


async def run_anchor(client: Client, address: str, practitioners: int, window: int) -> Measure:
    queue = f"anchor{uuid.uuid4().hex[:6]}"
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "anchor.py"), "--address", address,
         "--task-queue", queue],
        cwd=ROOT,
    )  # fmt: skip
    try:
        await wait_for_poller(client, queue, worker)
        cpu_before = cpu_seconds(worker.pid)
        started = time.monotonic()
        paid = await client.execute_workflow(
            "AnchorBatchWorkflow",
            AnchorBatchInput(practitioners=practitioners, window=window),
            id=f"{queue}-batch",
            task_queue=queue,
            result_type=int,
        )
        return Measure(time.monotonic() - started, cpu_seconds(worker.pid) - cpu_before, paid)
    finally:
        stop(worker)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practitioners", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=100, help="anchor's children in flight")
    args = parser.parse_args()
    db_kind = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL") else "SQLite"
    print(f"batch payout, {args.practitioners} practitioners, app database on {db_kind}")
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="estuary-bench-") as tmp:
        for n in range(1, args.rounds + 1):
            workdir = Path(tmp) / f"round{n}"
            workdir.mkdir()
            # A fresh server per round: payout workflow ids are business keys (one per
            # practitioner and day), so a second round on the same server would find them.
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(BIN / "temporal"),
                search_attributes=ALL_KEYS,
                dev_server_log_level="error",
            )
            address = env.client.service_client.config.target_host
            try:
                if n % 2:
                    ours = await run_ours(env.client, address, args.practitioners, workdir)
                    anchor = await run_anchor(env.client, address, args.practitioners, args.window)
                else:
                    anchor = await run_anchor(env.client, address, args.practitioners, args.window)
                    ours = await run_ours(env.client, address, args.practitioners, workdir)
            finally:
                await env.shutdown()
            ratio = anchor.rate() / ours.rate() if ours.rate() else float("inf")
            cpu_ratio = ours.cpu_seconds / anchor.cpu_seconds if anchor.cpu_seconds else 0
            ratios.append(ratio)
            cpu_ratios.append(cpu_ratio)
            print(
                f"round {n}: ours {ours.rate():.1f} payouts/s ({ours.seconds:.1f} s, worker "
                f"CPU {ours.cpu_seconds:.1f} s) | anchor {anchor.rate():.1f} payouts/s "
                f"({anchor.seconds:.1f} s, CPU {anchor.cpu_seconds:.1f} s) | "
                f"{ratio:.2f}x slower, {cpu_ratio:.2f}x the CPU",
                flush=True,
            )
    print(
        f"median: {statistics.median(ratios):.2f}x the anchor's time per payout, "
        f"{statistics.median(cpu_ratios):.2f}x its worker CPU (target: within 1.3x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # The SDK's native runtime can outlive the interpreter's finalisation and abort it
    # ("PyGILState_Release"); everything is printed and every server stopped by now.
    os._exit(0)
