"""Benchmark: a batch payout of N practitioners against the bare-SDK anchor, same machine.

Each round seeds a fresh app database with N active practitioners, each with a balance
below the approval threshold and a payout destination, starts the real payments worker
(`flask start-worker --domains payments`, a process of its own) and runs the real
BatchPractitionerPayoutWorkflow to its end. The anchor (bench/anchor.py: parent + N
children + three no-op activities each, in its own worker process) runs in the same
round, each side on a fresh dev server of its own started the same way (a shared
in-memory server makes the side that runs second pay for the first one's runs); the
order alternates between rounds so neither always runs on a warmer machine. The anchor
runs the same steps per payout as ours (the activities and local activities one of our
payouts recorded in its history, in order). Printed per
round: payouts per second and the worker process's CPU seconds (user + system, all
threads, from /proc), the dev server's CPU seconds over the same batch (both sides share
the machine's two cores with it, so the time ratio follows the sum of worker and server
CPU), the ratios ours/anchor, our worker's peak RSS, the "database is
locked" lines in its log, the batch's runs (continue-as-new) with their largest
history, and where a payout's time goes on each side: the median, over 40 completed
payouts, of the time its activities waited for a worker slot, ran, and the same for its
workflow tasks (from the server's event timestamps).

`--profile DIR` records both workers with py-spy (`PY_SPY=/path/to/py-spy`; not a
dependency of the project) and prints the top frames of each; `--profile-gil` samples only
the thread holding the GIL, so the shares follow CPU rather than runnable threads.

    .venv/bin/python bench/batch_payout.py                      # 2,000 practitioners, 3 rounds
    .venv/bin/python bench/batch_payout.py --practitioners 200 --rounds 1
    .venv/bin/python bench/batch_payout.py --practitioners 10000 --rounds 1 --no-anchor
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/batch_payout.py                  # app database on PostgreSQL

With BENCH_DATABASE_URL each round creates its own database on that server and drops it
afterwards. No timed test depends on this; it only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
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
    peak_rss_mb: float = 0.0
    locked_lines: int = 0
    deadlock_lines: int = 0
    runs: int = 1
    max_history_events: int = 0
    max_history_bytes: int = 0
    steps: list[str] | None = None
    # Median seconds per payout of each leg (`payout_legs`), over a sample of payouts.
    legs: dict[str, float] | None = None
    # The dev server's CPU over the same batch (it shares the machine's cores).
    server_cpu_seconds: float = 0.0

    def rate(self) -> float:
        return self.paid / self.seconds if self.seconds else 0.0


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Profile:
    """py-spy recording one process (raw collapsed stacks), when --profile is given."""

    # --profile-gil: only the thread holding the GIL is sampled (py-spy --gil).
    gil = False

    def __init__(self, pid: int, directory: Path | None, name: str) -> None:
        self.proc = None
        self.path = None
        if directory is None:
            return
        spy = Path(os.environ.get("PY_SPY") or BIN / "py-spy")
        if not spy.exists():
            raise SystemExit(
                "--profile needs py-spy (PY_SPY=path, or .venv/bin/py-spy): it is not a "
                "dependency; e.g. python -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy"
            )
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.txt"
        self.proc = subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "100",
             "--nonblocking", "--output", str(self.path), *(["--gil"] if self.gil else [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Frames every busy sample passes through: they say nothing about where the time goes.
_PLUMBING = (
    "(asyncio/events.py)",
    "(asyncio/base_events.py)",
    "(asyncio/runners.py)",
    "(click/core.py)",
    "(click/decorators.py)",
    "(flask/cli.py)",
    "(flask)",
    "(workers/temporal/cli.py)",
    "(bench/anchor.py)",
    "(threading.py)",
    "(concurrent/futures/thread.py)",
)


def profile_summary(path: Path, top: int = 12) -> list[str]:
    """Top frames by share of samples that were not idle: own (leaf) and inclusive."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")"
                  for f in stack.split(";")]  # fmt: skip
        # Threads waiting in the SDK core or for work are idle, not cost.
        leaf = frames[-1]
        if any(w in leaf for w in ("select (", "wait (", "_worker (", "acquire (")):
            continue
        n = int(count)
        total += n
        own[leaf] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return ["  (no busy samples)"]
    out = [f"  {total} busy samples; own time:"]
    out += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("  inclusive (the event loop, CLI and runner frames left out):")
    shown = [(f, n) for f, n in inclusive.most_common() if not f.endswith(_PLUMBING)]
    out += [f"    {100 * n / total:5.1f}%  {f}" for f, n in shown[: top + 8]]
    return out


def payout_steps(events: list) -> list[str]:
    """The activities ("activity") and local activities ("local") of one payout's
    history, in order."""
    from temporalio.api.enums.v1 import EventType

    steps = []
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps.append("activity")
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and (
            e.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ):
            steps.append("local")
    return steps


LEG_NAMES = (
    "activity queued",  # scheduled -> started: waiting for a free activity slot / poller
    "activity running",  # started -> completed: the activity's own work
    "workflow task queued",  # scheduled -> started
    "workflow task running",  # started -> completed: the workflow code (and its sandbox)
    "whole payout",  # first event -> last event of the child run
)


def payout_legs(events: list) -> dict[str, float]:
    """Seconds one payout spent in each leg of `LEG_NAMES` (summed over its activities and
    workflow tasks), from the server's event timestamps."""
    from temporalio.api.enums.v1 import EventType as E

    def at(e) -> float:
        return e.event_time.ToNanoseconds() / 1e9

    legs = dict.fromkeys(LEG_NAMES, 0.0)
    by_id = {e.event_id: e for e in events}
    for e in events:
        if e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            scheduled = by_id[e.activity_task_started_event_attributes.scheduled_event_id]
            legs["activity queued"] += at(e) - at(scheduled)
        elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            started = by_id[e.activity_task_completed_event_attributes.started_event_id]
            legs["activity running"] += at(e) - at(started)
        elif e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled = by_id[e.workflow_task_started_event_attributes.scheduled_event_id]
            legs["workflow task queued"] += at(e) - at(scheduled)
        elif e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            started = by_id[e.workflow_task_completed_event_attributes.started_event_id]
            legs["workflow task running"] += at(e) - at(started)
    if events:
        legs["whole payout"] = at(events[-1]) - at(events[0])
    return legs


async def sample_legs(client: Client, query: str, sample: int = 40) -> dict[str, float]:
    """The median of each leg over up to `sample` completed payouts matching `query`."""
    seen: dict[str, list[float]] = {name: [] for name in LEG_NAMES}
    async for r in client.list_workflows(query, limit=sample):
        history = await client.get_workflow_handle(r.id, run_id=r.run_id).fetch_history()
        for name, seconds in payout_legs(list(history.events)).items():
            seen[name].append(seconds)
    return {name: statistics.median(v) for name, v in seen.items() if v}


def legs_line(who: str, legs: dict[str, float] | None) -> str:
    if not legs:
        return ""
    parts = ", ".join(f"{name} {1000 * legs[name]:.0f} ms" for name in LEG_NAMES if name in legs)
    return f"\n  {who}: per payout (median): {parts}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def server_pid(address: str) -> int | None:
    """The pid of the dev server listening on `address` (its command line names the port)."""
    port = address.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in argv and port.encode() in argv:
            return int(entry.name)
    return None


class Span:
    """What one batch costs, from here to `stop()`: wall time, the worker's CPU, the dev
    server's CPU over the same time (0 if its process is not found), the worker's peak
    RSS; and, with --profile, a py-spy recording of the worker."""

    def __init__(self, worker_pid: int, address: str, profile: Path | None, name: str) -> None:
        self.worker_pid = worker_pid
        self.spy = Profile(worker_pid, profile, name)
        self.server = server_pid(address)
        self.server_before = cpu_seconds(self.server) if self.server else 0.0
        self.cpu_before = cpu_seconds(worker_pid)
        self.started = time.monotonic()

    def stop(self) -> None:
        self.seconds = time.monotonic() - self.started
        self.cpu = cpu_seconds(self.worker_pid) - self.cpu_before
        self.server_cpu = cpu_seconds(self.server) - self.server_before if self.server else 0.0
        self.rss = peak_rss_mb(self.worker_pid)
        self.spy.stop()


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


async def run_ours(
    bare: Client,
    address: str,
    practitioners: int,
    window: int,
    workdir: Path,
    profile: Path | None,
) -> Measure:
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
        span = Span(worker.pid, address, profile, "ours")
        handle = await client.start_workflow(
            "BatchPractitionerPayoutWorkflow",
            {
                "min_amount_cents": 100,
                "requested_by": "bench@estuary.local",
                "chunk_size": window,
            },
            id=f"{prefix}batch",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "batch", "bench", "bench"),
        )
        result = await _result_with_progress(client, handle, practitioners)
        span.stop()
        paid = int(result.get("paid_count", 0)) if isinstance(result, dict) else 0
        if paid != practitioners:
            lines = result.get("lines", [])[:3] if isinstance(result, dict) else result
            print(f"  warning: our batch paid {paid} of {practitioners}; first lines: {lines}")
        runs = [r async for r in client.list_workflows(f"WorkflowId = '{prefix}batch'")]
        # Each run's own record (a listing read just after the batch closed can still
        # hold the last run as it was when it started: no events counted yet).
        infos = [
            (
                await client.get_workflow_handle(r.id, run_id=r.run_id).describe()
            ).raw_description.workflow_execution_info
            for r in runs
        ]
        one = None
        async for r in client.list_workflows(
            "WorkflowType = 'PractitionerPayoutWorkflow' AND ExecutionStatus = 'Completed'",
            limit=1,
        ):
            one = r
        steps = None
        if one is not None:
            history = await client.get_workflow_handle(one.id, run_id=one.run_id).fetch_history()
            steps = payout_steps(list(history.events))
        legs = await sample_legs(
            client,
            f"WorkflowType = 'PractitionerPayoutWorkflow' AND ExecutionStatus = 'Completed' "
            f"AND TaskQueue = '{prefix}payments'",
        )
        stop(worker)
        log_text = (workdir / f"{prefix}worker.log").read_text(errors="replace")
        worker = None
        return Measure(
            span.seconds,
            span.cpu,
            paid,
            peak_rss_mb=span.rss,
            locked_lines=log_text.lower().count("database is locked"),
            deadlock_lines=log_text.count("TMPRL1101"),
            runs=len(runs),
            max_history_events=max((i.history_length for i in infos), default=0),
            max_history_bytes=max((i.history_size_bytes for i in infos), default=0),
            steps=steps,
            legs=legs,
            server_cpu_seconds=span.server_cpu,
        )
    finally:
        if worker is not None:
            stop(worker)
        database.drop()


PROGRESS_COUNTS = ("in_flight", "paid", "waiting_for_approval", "failed", "skipped")


async def _result_with_progress(client: Client, handle, practitioners: int) -> dict:
    """The batch's result; every 15 s on the way, one line of its progress query (what
    the console shows while it runs)."""
    waiting = asyncio.ensure_future(handle.result())
    while True:
        done, _ = await asyncio.wait([waiting], timeout=15)
        if done:
            return waiting.result()
        try:
            p = await client.get_workflow_handle(handle.id).query("progress")
        except Exception as exc:  # a query racing a continue-as-new: try again later
            print(f"  progress: ({type(exc).__name__})", flush=True)
            continue
        if isinstance(p, dict):
            counts = {
                k: (v.get("count") if isinstance(v, dict) else v)
                for k, v in p.items()
                if k in PROGRESS_COUNTS
            }
            print(f"  progress of {practitioners}: run {p.get('run')}, {counts}", flush=True)


async def run_anchor(
    client: Client,
    address: str,
    practitioners: int,
    window: int,
    steps: list[str],
    profile: Path | None,
) -> Measure:
    queue = f"anchor{uuid.uuid4().hex[:6]}"
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "anchor.py"), "--address", address,
         "--task-queue", queue],
        cwd=ROOT,
    )  # fmt: skip
    try:
        await wait_for_poller(client, queue, worker)
        span = Span(worker.pid, address, profile, "anchor")
        paid = await client.execute_workflow(
            "AnchorBatchWorkflow",
            AnchorBatchInput(practitioners=practitioners, window=window, steps=steps),
            id=f"{queue}-batch",
            task_queue=queue,
            result_type=int,
        )
        span.stop()
        legs = await sample_legs(
            client,
            f"WorkflowType = 'AnchorPayoutWorkflow' AND ExecutionStatus = 'Completed' "
            f"AND TaskQueue = '{queue}'",
        )
        return Measure(
            span.seconds,
            span.cpu,
            paid,
            peak_rss_mb=span.rss,
            steps=steps,
            legs=legs,
            server_cpu_seconds=span.server_cpu,
        )
    finally:
        stop(worker)


def _round_line(n: int, ours: Measure, anchor: Measure | None) -> str:
    line = (
        f"round {n}: ours {ours.rate():.1f} payouts/s ({ours.seconds:.1f} s, worker CPU "
        f"{ours.cpu_seconds:.1f} s, peak RSS {ours.peak_rss_mb:.0f} MB, server CPU "
        f"{ours.server_cpu_seconds:.1f} s)"
    )
    if anchor is not None:
        ratio = anchor.rate() / ours.rate() if ours.rate() else float("inf")
        cpu_ratio = ours.cpu_seconds / anchor.cpu_seconds if anchor.cpu_seconds else 0
        line += (
            f" | anchor {anchor.rate():.1f} payouts/s ({anchor.seconds:.1f} s, CPU "
            f"{anchor.cpu_seconds:.1f} s, server CPU {anchor.server_cpu_seconds:.1f} s) | "
            f"{ratio:.2f}x slower, {cpu_ratio:.2f}x the CPU"
        )
    return line + (
        f"\n  our batch: {ours.runs} runs (continue-as-new), largest history "
        f"{ours.max_history_events} events / {ours.max_history_bytes / 1e6:.1f} MB (the "
        f'server warns from 10,240 events or 10 MB); "database is locked" in the '
        f"worker log: {ours.locked_lines}; workflow tasks over the SDK's 2 s deadlock "
        f"timeout (TMPRL1101): {ours.deadlock_lines}; "
        f"steps per payout: {', '.join(ours.steps or [])}"
        + legs_line("ours", ours.legs)
        + legs_line("anchor", anchor.legs if anchor else None)
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practitioners", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--window", type=int, default=100, help="payouts in flight, ours and the anchor's"
    )
    parser.add_argument("--no-anchor", action="store_true", help="only our batch (big N)")
    parser.add_argument("--profile", type=Path, help="py-spy both workers into this folder")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile, sample only the thread holding the GIL (py-spy --gil): the "
        "samples then follow the worker's CPU; without it a thread that is runnable but "
        "waiting for a core on a busy machine counts as busy",
    )
    args = parser.parse_args()
    Profile.gil = args.profile_gil
    db_kind = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL") else "SQLite"
    print(
        f"batch payout, {args.practitioners} practitioners, {args.window} in flight, app "
        f"database on {db_kind}; load average before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    # The anchor's steps are our payout's (read from its history); until a round of ours
    # has run, the first landing's three activities.
    steps = ["activity"] * 3
    with tempfile.TemporaryDirectory(prefix="estuary-bench-") as tmp:
        for n in range(1, args.rounds + 1):
            workdir = Path(tmp) / f"round{n}"
            workdir.mkdir()
            profile = args.profile / f"round{n}" if args.profile else None
            # A fresh dev server for each side of each round, started the same way: the
            # in-memory server grows with every batch it has run (its persistence and
            # visibility keep the closed runs), and the side that ran second on a shared
            # server paid for the first one's runs: up to 15 % more server CPU a payout
            # (docs/performance.md). Payout workflow ids are business keys (one per
            # practitioner and day), so a second batch on one server would find them too.
            anchor = None
            ours_first = n % 2 == 1 or args.no_anchor
            order = ["ours", "anchor"] if ours_first else ["anchor", "ours"]
            for side in order:
                if side == "anchor" and args.no_anchor:
                    continue
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(BIN / "temporal"),
                    search_attributes=ALL_KEYS,
                    dev_server_log_level="error",
                )
                address = env.client.service_client.config.target_host
                try:
                    if side == "ours":
                        ours = await run_ours(
                            env.client, address, args.practitioners, args.window, workdir, profile
                        )
                        steps = ours.steps or steps
                    else:
                        anchor = await run_anchor(
                            env.client, address, args.practitioners, args.window, steps, profile
                        )
                finally:
                    await env.shutdown()
            if anchor is not None:
                ratios.append(anchor.rate() / ours.rate() if ours.rate() else float("inf"))
                cpu_ratios.append(
                    ours.cpu_seconds / anchor.cpu_seconds if anchor.cpu_seconds else 0
                )
            print(_round_line(n, ours, anchor), flush=True)
            if profile is not None:
                for name in ("ours", "anchor"):
                    path = profile / f"{name}.txt"
                    if path.exists():
                        print(f"  profile of {name}'s worker ({path}):")
                        print("\n".join(profile_summary(path)), flush=True)
    if ratios:
        print(
            f"median: {statistics.median(ratios):.2f}x the anchor's time per payout, "
            f"{statistics.median(cpu_ratios):.2f}x its worker CPU (target: within 1.3x); "
            f"load average after: {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # The SDK's native runtime can outlive the interpreter's finalisation and abort it
    # ("PyGILState_Release"); everything is printed and every server stopped by now.
    os._exit(0)
