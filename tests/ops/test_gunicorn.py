"""The console as production runs it: gunicorn with the shipped gunicorn.conf.py, 4
worker processes, PostgreSQL. Four approvers approve the same payout at the same moment,
their requests landing on different processes: exactly one decision is recorded, because
decisions are serialised by a row lock in the database, not by any one process."""

from __future__ import annotations

import asyncio
import base64
import html
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.client import Client

from estuary.db import db
from estuary.models import AuditEvent, PayoutApproval
from temporal_gateway.codec import data_converter
from tests.conftest import POSTGRES, running_workers
from tests.console.test_write_approvals import _approvals, _payout, _request_payout
from tests.console.write_support import (
    HttpSession,
    counting_gateway_for,
    login,
    seed_practitioner,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
APPROVERS = 4
PAYLOAD_KEYS = "gunicorn-test:" + base64.b64encode(b"g" * 32).decode()

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base_url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"gunicorn did not answer /healthz:\n{log.read_text()}")


def _worker_pids(master: int) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.add(int(entry.name))
    return pids


async def test_concurrent_approvals_on_four_gunicorn_processes_give_one_decision(
    app, local_env, database_url, tmp_path
):
    pid = seed_practitioner(app, balance_cents=90_000)
    operator, _ = login(app, "operator")
    approvers = [login(app, "approver")[1] for _ in range(APPROVERS)]
    # Payloads encrypted as in production: the workers, this test's gateway and the
    # gunicorn processes share one key.
    app.config["PAYLOAD_KEYS"] = PAYLOAD_KEYS
    keyed = Client(
        local_env.client.service_client,
        namespace=local_env.client.namespace,
        data_converter=data_converter({"PAYLOAD_KEYS": PAYLOAD_KEYS}),
    )
    async with running_workers(keyed, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        payout = await _request_payout(app, operator, pid, "700.00")

        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "ESTUARY_ENV": "development",
            "ESTUARY_VAR_DIR": str(tmp_path / "var"),
            "SECRET_KEY": "gunicorn-test-secret",
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": local_env.client.namespace,
            "TEMPORAL_TASK_QUEUE_PREFIX": prefix,
            "PAYLOAD_KEYS": PAYLOAD_KEYS,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "4",
            "GUNICORN_THREADS": "2",
            "GUNICORN_ACCESS_LOG": "off",
        }
        log = tmp_path / "gunicorn.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "-c",
                    str(ROOT / "gunicorn.conf.py"),
                    "estuary_ops:create_app()",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            await asyncio.to_thread(_wait_healthy, base_url, server, log)
            assert len(_worker_pids(server.pid)) == 4
            sessions = []
            for user in approvers:
                s = HttpSession(base_url)
                await asyncio.to_thread(s.sign_in, user.email)
                sessions.append(s)
            tokens = [await asyncio.to_thread(s.token, "/approvals/") for s in sessions]
            barrier = threading.Barrier(APPROVERS)
            results: list[tuple[int, str]] = [(0, "")] * APPROVERS

            def click(i: int) -> None:
                data = {
                    "amount_cents": "700.00",
                    "practitioner_id": str(pid),
                    "csrf_token": tokens[i],
                }
                barrier.wait()
                results[i] = sessions[i].request(f"/approvals/{payout.id}/approve", data)

            threads = [threading.Thread(target=click, args=(i,)) for i in range(APPROVERS)]
            for t in threads:
                t.start()
            await asyncio.to_thread(lambda: [t.join(60) for t in threads])
        finally:
            server.terminate()
            server.wait(30)

        statuses = sorted(code for code, _ in results)
        assert statuses == [303] + [409] * (APPROVERS - 1), results
        for code, body in results:
            if code == 409:  # refused by the console, under the lock, before Temporal
                refusal = " ".join(re.findall(r"Refused[^<]*", html.unescape(body)))
                assert refusal.startswith("Refused: already decided"), refusal
        assert [d for _, d in _approvals(app)] == ["approve"]
        with app.app_context():
            outcomes = sorted(
                e.outcome
                for e in db.session.scalars(
                    select(AuditEvent).where(AuditEvent.action == "approvals.approve")
                )
            )
            assert outcomes == ["denied"] * (APPROVERS - 1) + ["success"]
            assert len(db.session.scalars(select(PayoutApproval)).all()) == 1
        await wait_for(lambda: _payout(app).status == "paid", what="paid once")
    assert "Traceback" not in log.read_text(), log.read_text()
