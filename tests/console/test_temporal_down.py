"""Fast when Temporal is not (issue 14): once the console has found Temporal unreachable,
every GET page (from the url_map, tests/console/page_list.py) answers in under 1 s, and
each one that asks Temporal shows the unreachable banner, whether the
server was stopped (connections refused) or hung (SIGSTOP: connections accepted, nothing
answered), and the pages come back by themselves once the server answers again.

Each test starts a Temporal dev server process of its own on free ports (the only process
it stops, hangs, continues and kills), so nothing else in the session is affected.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from estuary.contracts import catalogue
from estuary.contracts.payout_upkeep import LedgerReconciliationInput
from estuary.contracts.search_attributes import ALL_KEYS
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import TemporalGateway
from tests.console import page_list
from tests.console.write_support import CountingGateway, login, make_world, seed_booking

TEMPORAL = Path(sys.executable).parent / "temporal"
# Far above what a page costs here when it does not wait for Temporal (tens of ms), far
# below the 5 s RPC timeout and 3 s connect timeout a page used to wait on each request.
FAST_SECONDS = 1.0
# How long the first request after Temporal went away may take to find out (the RPC
# timeout plus the connect timeout and the confirming probe, with room for a busy box).
FIRST_REQUEST_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnTemporal:
    """`temporal server start-dev` on a port of its own, started and ended by the test."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
        args += ["--port", str(self.port), "--log-level", "error"]
        args += ["--http-port", str(_free_port()), "--metrics-port", str(_free_port())]
        for key in ALL_KEYS:
            args += ["--search-attribute", f"{key.name}=Keyword"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def hang(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()  # a stopped process cannot act on SIGKILL's cleanup otherwise
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def own_temporal() -> Iterator[OwnTemporal]:
    server = OwnTemporal()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _gateway(app: Flask, server: OwnTemporal) -> TemporalGateway:
    gw = CountingGateway(
        {**app.config, "TEMPORAL_ADDRESS": server.address, "TEMPORAL_TASK_QUEUE_PREFIX": "down-"}
    )
    set_gateway(app, gw)
    return gw


def _wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def _answers(gw: TemporalGateway) -> bool:
    try:
        gw.check()
    except Exception:
        return False
    return True


def _pages(app: Flask, gw: TemporalGateway) -> tuple[list[str], set[str]]:
    """Every GET page of the url_map (tests/console/page_list.py), for rows that exist (a
    practitioner, a payout and a booking in the database, a run in Temporal), and the
    fragments, download and probes that also ask Temporal; and which of them show the
    unreachable banner: the hand-picked ones, and every page that called Temporal while
    it answered."""
    world = make_world(app)
    booking = seed_booking(app, practitioner_id=world.practitioner_id)
    with app.app_context():
        run = gw.start(
            "LedgerReconciliationWorkflow",
            LedgerReconciliationInput(requested_by="tests"),
            triggered_by="tests",
            reason="Temporal-down test",
        )
        names = [w.name for w in catalogue.all_workflows()]
    wid, rid = run.workflow_id, run.run_id
    samples = [
        {
            "practitioner_id": world.practitioner_id,
            "payout_id": world.payout_id,
            "booking_id": booking,
        },
        {"workflow_id": wid, "run_id": rid},
        *({"name": n} for n in names),
    ]
    every = page_list.pages(app, samples)
    hand_picked = [
        "/",
        "/runs",
        "/runs?domain=payments&status=Running",
        f"/runs/{wid}/{rid}",
        "/workers",
        f"/practitioners/{world.practitioner_id}",
        f"/payouts/{world.payout_id}",
        f"/bookings/{booking}",
        f"/runs/{wid}/{rid}/events",
        "/workflows",
        "/schedules/",
        "/runs/bulk-retry",
    ]
    with_banner = set(hand_picked)
    assert with_banner - {"/runs?domain=payments&status=Running"} <= {p.path for p in every}
    admin, _ = login(app, "admin")
    for page in every:
        before = gw.calls  # type: ignore[attr-defined]
        assert admin.get(page.path).status_code == 200, page
        if gw.calls > before:  # type: ignore[attr-defined]
            with_banner.add(page.path)
    others = [  # fragments, a download, JSON, and a probe
        f"/runs/live?run={rid}",
        f"/runs/{wid}",
        f"/runs/{wid}/{rid}/live",
        f"/runs/{wid}/{rid}/history.json",
        "/charts/runs",
        "/readyz",
    ]
    paths = list(dict.fromkeys([*hand_picked, *(p.path for p in every), *others]))
    return paths, with_banner


def _look(client, pages: list[str]) -> dict[str, tuple[int, bool, float]]:
    """(status, banner shown, seconds) for each page."""
    seen = {}
    for path in pages:
        started = time.monotonic()
        response = client.get(path)
        elapsed = time.monotonic() - started
        body = response.get_data(as_text=True)
        assert "Temporal error (" not in body, f"{path}: {body[:300]}"
        seen[path] = (response.status_code, 'data-testid="temporal-down"' in body, elapsed)
    return seen


def _assert_fast_with_banner(seen: dict, with_banner: set[str], how: str) -> None:
    slow = {p: round(s, 2) for p, (_, _, s) in seen.items() if s >= FAST_SECONDS}
    assert not slow, f"Temporal {how}: pages waited for it: {slow}"
    for path, (status, banner, _) in seen.items():
        assert status in (200, 503), f"Temporal {how}: {path} answered {status}"
        if path in with_banner:
            assert banner, f"Temporal {how}: {path} shows no unreachable banner"


def _first_request_finds_out(client, gw: TemporalGateway) -> None:
    started = time.monotonic()
    response = client.get("/runs")
    assert time.monotonic() - started < FIRST_REQUEST_SECONDS
    assert 'data-testid="temporal-down"' in response.get_data(as_text=True)
    assert gw.unreachable_message() is not None


def test_pages_answer_at_once_while_temporal_is_stopped_or_hung(app, own_temporal):
    """Stopped, then back; hung, then back: the same pages, the same look, each under 1 s
    once the first request found out; the banner goes once the server answers."""
    gw = _gateway(app, own_temporal)
    _wait_until(lambda: _answers(gw), 30, "the test's Temporal dev server answers")
    pages, with_banner = _pages(app, gw)
    admin, _ = login(app, "admin")
    assert admin.get("/runs").status_code == 200  # connected and working

    # Stopped: connections refused.
    own_temporal.stop()
    _first_request_finds_out(admin, gw)
    stopped = _look(admin, pages)
    _assert_fast_with_banner(stopped, with_banner, "stopped")

    # Back on the same port: the background probe closes the breaker by itself.
    own_temporal.start()
    _wait_until(lambda: gw.unreachable_message() is None, 30, "the breaker closes")
    _wait_until(lambda: _answers(gw), 30, "the restarted server answers")
    page = admin.get("/runs")
    assert page.status_code == 200
    assert 'data-testid="temporal-down"' not in page.get_data(as_text=True)
    pages, with_banner = _pages(app, gw)  # the restarted dev server kept nothing

    # Hung: connections stay open, nothing answers (the old 502 "CANCELLED" and 15 s).
    own_temporal.hang()
    _first_request_finds_out(admin, gw)
    hung = _look(admin, pages)
    _assert_fast_with_banner(hung, with_banner, "hung")
    # A hung server looks exactly like a stopped one, page by page.
    assert [s[:2] for s in hung.values()] == [s[:2] for s in stopped.values()]

    own_temporal.resume()
    _wait_until(lambda: gw.unreachable_message() is None, 30, "the breaker closes")
    page = admin.get("/runs")
    assert page.status_code == 200
    assert 'data-testid="temporal-down"' not in page.get_data(as_text=True)


def test_a_slow_query_does_not_open_the_breaker(app, own_temporal):
    """A query no worker answers times out, but the server answers the probe: the
    console says no worker answered, and keeps talking to Temporal."""
    gw = _gateway(app, own_temporal)
    _wait_until(lambda: _answers(gw), 30, "the test's Temporal dev server answers")
    with app.app_context():
        run = gw.start(
            "LedgerReconciliationWorkflow",
            LedgerReconciliationInput(requested_by="tests"),
            triggered_by="tests",
        )
    from temporal_gateway.gateway import NoWorkerAnswered

    with pytest.raises(NoWorkerAnswered):
        gw.query(run.workflow_id, "progress", run.run_id, timeout_seconds=1)
    assert gw.unreachable_message() is None
    gw.check()
