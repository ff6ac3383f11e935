"""Benchmark: the console under load, in its production server configuration.

Starts a Temporal dev server, a payments worker and the console under gunicorn with the
shipped gunicorn.conf.py (gthread), all on free ports, on a fresh app database with a few
hundred runs in Temporal. Signed-in users then request a mix of pages (home, runs list,
a run's detail, payouts, approvals, practitioners) in a closed loop:

- one user, no think time: the single-user median (the anchor);
- USERS users, no think time: throughput and errors (target: at least twice 36 req/s,
  the figure measured for the first landing, with 0 errors);
- USERS users with 1 s of think time: p95 latency (target: within 3x the single-user
  median). Each user starts at its own point of the first second, as people do not click
  in step.
The run in the mix is requested at its own address, as the runs list links it.

    .venv/bin/python bench/console_load.py                 # 20 users, 60 s per phase
    .venv/bin/python bench/console_load.py --users 10 --seconds 20

Requests only go to 127.0.0.1; every loop is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from estuary.contracts.search_attributes import ALL_KEYS, run_attributes  # noqa: E402
from temporal_gateway.codec import data_converter, new_key_entry  # noqa: E402

BIN = Path(sys.executable).parent
EMAIL, PASSWORD = "bench-viewer@estuary.local", "bench viewer password 1"
BASELINE_REQ_PER_SECOND = 36.0  # the first landing's figure for 20 users (issue text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    by_path: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        return _pct(self.latencies, q)

    def print_paths(self) -> None:
        for path, times in self.by_path.items():
            print(
                f"  {path}: {len(times)} requests, median {_pct(times, 0.5) * 1000:.0f} ms, "
                f"p95 {_pct(times, 0.95) * 1000:.0f} ms"
            )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class User:
    """One signed-in person: a cookie jar and the CSRF dance of the sign-in form."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        form = self.get("/auth/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        if token is None:
            raise RuntimeError("no CSRF token on the sign-in page")
        data = urllib.parse.urlencode(
            {"csrf_token": token[1], "email": EMAIL, "password": PASSWORD}
        ).encode()
        body = self.opener.open(f"{base}/auth/login", data, timeout=30).read().decode()
        if "Sign out" not in body and "sign out" not in body.lower():
            raise RuntimeError("sign-in failed")

    def get(self, path: str) -> str:
        with self.opener.open(f"{self.base}{path}", timeout=30) as response:
            return response.read().decode()

    def final_path(self, path: str) -> str:
        """Where `path` ends up after its redirects."""
        with self.opener.open(f"{self.base}{path}", timeout=30) as response:
            return urllib.parse.urlsplit(response.geturl()).path


def run_phase(base: str, paths: list[str], users: int, seconds: float, think: float) -> Phase:
    phase = Phase()
    lock = threading.Lock()
    signed_in = [User(base) for _ in range(users)]
    deadline = time.monotonic() + seconds

    def loop(user: User, offset: int) -> None:
        n = offset
        if think:
            # People do not click in step: each starts somewhere in the first think time.
            # (Started together, 20 users with the same think time asked for 20 pages
            # at once every second, and the p95 measured that burst.)
            time.sleep(think * offset / users)
        while time.monotonic() < deadline:
            path = paths[n % len(paths)]
            n += 1
            started = time.monotonic()
            try:
                user.get(path)
                ok = True
            except (urllib.error.URLError, OSError):
                ok = False
            elapsed = time.monotonic() - started
            with lock:
                if ok:
                    phase.latencies.append(elapsed)
                    phase.by_path.setdefault(path, []).append(elapsed)
                else:
                    phase.errors += 1
            if think:
                time.sleep(think)

    threads = [threading.Thread(target=loop, args=(u, i)) for i, u in enumerate(signed_in)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.seconds = time.monotonic() - started
    return phase


async def start_runs(client, prefix: str, count: int) -> None:
    limit = asyncio.Semaphore(32)

    async def start(n: int) -> None:
        async with limit:
            await client.start_workflow(
                "PractitionerPayoutWorkflow",
                {"practitioner_id": n, "requested_by": "bench@estuary.local"},
                id=f"{prefix}load-payout-{n}",
                task_queue=f"{prefix}idle",
                search_attributes=run_attributes("payments", "practitioner", n, "bench"),
            )

    await asyncio.gather(*(start(n) for n in range(1, count + 1)))


def recycles(gunicorn_log: Path) -> int:
    """Console processes gunicorn has booted so far (its log: one line a process)."""
    return gunicorn_log.read_text(errors="replace").count("Booting worker")


def recycled(gunicorn_log: Path, before: int) -> str:
    """How many console processes were recycled (`max_requests`) during a phase: a
    process that boots takes CPU from the ones serving, which shows in the phase's p95."""
    booted = recycles(gunicorn_log) - before
    return f", {booted} console processes recycled" if booted else ""


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"console exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 (http://127.0.0.1 only)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    address = env.client.service_client.config.target_host
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    processes: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory(prefix="estuary-load-") as tmp:
            port = free_port()
            app_env = {
                **os.environ,
                "FLASK_APP": "estuary_ops",
                "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
                or f"sqlite:///{Path(tmp) / 'load.db'}",
                "ESTUARY_VAR_DIR": tmp,
                "TEMPORAL_ADDRESS": address,
                "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_ACCESS_LOG": "off",
                "PAYLOAD_KEYS": new_key_entry("bench"),
            }
            flask = str(BIN / "flask")
            for command in (
                [flask, "db", "upgrade"],
                [flask, "seed-demo"],
                [flask, "users", "create", "--email", EMAIL, "--role", "viewer",
                 "--password", PASSWORD],
            ):  # fmt: skip
                subprocess.run(command, env=app_env, cwd=ROOT, check=True, capture_output=True)
            client = await Client.connect(
                address,
                namespace=env.client.namespace,
                data_converter=data_converter(app_env),
            )
            await start_runs(client, prefix, args.runs)
            worker = subprocess.Popen(
                [flask, "start-worker", "--domains", "payments"],
                env=app_env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(worker)
            # One closed run to show in detail: a ledger check, finished by the worker.
            ledger = await client.execute_workflow(
                "LedgerReconciliationWorkflow",
                {},
                id=f"{prefix}ledger-check",
                task_queue=f"{prefix}payments",
                search_attributes=run_attributes("payments", "ledger", "all", "bench"),
            )
            del ledger
            gunicorn_log = Path(tmp) / "gunicorn.log"
            console = subprocess.Popen(
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "estuary_ops:create_app()"],
                env=app_env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=open(gunicorn_log, "w"),  # noqa: SIM115
            )
            processes.append(console)
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz", console)
            # The run page at its own address, as the runs list links it (its business
            # key alone redirects there, after asking Temporal for the latest run).
            detail = User(base).final_path(f"/runs/{prefix}ledger-check")
            paths = [
                "/",
                "/runs?domain=payments&page_size=50",
                detail,
                "/payouts",
                "/approvals/",  # the navigation's URL (/approvals redirects here)
                "/practitioners",
            ]
            booted = recycles(gunicorn_log)
            single = run_phase(base, paths, 1, min(args.seconds, 20), 0)
            median = statistics.median(single.latencies)
            single.print_paths()
            print(
                f"1 user: {single.rate():.1f} req/s, median {median * 1000:.0f} ms, "
                f"{single.errors} errors{recycled(gunicorn_log, booted)}",
                flush=True,
            )
            booted = recycles(gunicorn_log)
            busy = run_phase(base, paths, args.users, args.seconds, 0)
            print(
                f"{args.users} users, closed loop: {busy.rate():.1f} req/s "
                f"({busy.rate() / BASELINE_REQ_PER_SECOND:.2f}x the first landing's 36 req/s; "
                f"target 2x), p95 {busy.pct(0.95) * 1000:.0f} ms, {busy.errors} errors"
                f"{recycled(gunicorn_log, booted)}",
                flush=True,
            )
            booted = recycles(gunicorn_log)
            thinking = run_phase(base, paths, args.users, args.seconds, 1.0)
            thinking.print_paths()
            p95 = thinking.pct(0.95)
            print(
                f"{args.users} users, 1 s think time: {thinking.rate():.1f} req/s, p95 "
                f"{p95 * 1000:.0f} ms = {p95 / median:.2f}x the single-user median "
                f"(target 3x), {thinking.errors} errors; load average "
                f"{os.getloadavg()[0]:.1f}{recycled(gunicorn_log, booted)}",
                flush=True,
            )
    finally:
        for proc in reversed(processes):
            stop(proc)
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # see bench/batch_payout.py: the SDK runtime may abort interpreter exit
