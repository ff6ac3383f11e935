"""`make run`'s supervisor (scripts/run_dev.py) on free ports with its own var dir: the
ports are checked before the database is touched, the banner comes only when everything
is up, and no child outlives it, whether it is stopped by SIGHUP (terminal closed) or
killed outright with SIGKILL; and a schedule paused in one run is still paused with its
note after the next run synced the schedules again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.client import Client

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = ROOT / "scripts" / "run_dev.py"
BANNER = "Ctrl-C stops everything."
BIN = Path(sys.executable).parent
PAYOUT_SCHEDULE = "payments-weekly-batch-payout"
NOTE = "paused by admin@estuary.local: month-end audit"

pytestmark = pytest.mark.live


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _env(var_dir: Path, ports: list[int]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_UI_URL", "SECRET_KEY")
    }
    env.update(
        ESTUARY_ENV="development",
        ESTUARY_VAR_DIR=str(var_dir),
        TEMPORAL_PORT=str(ports[0]),
        TEMPORAL_UI_PORT=str(ports[1]),
        CONSOLE_PORT=str(ports[2]),
        PYTHONUNBUFFERED="1",
    )
    return env


def _start(var_dir: Path, ports: list[int], log: Path, **extra: str) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(SUPERVISOR)],
            cwd=ROOT,
            env={**_env(var_dir, ports), **extra},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the test's own terminal signals never reach it
        )


def _wait_for_text(proc: subprocess.Popen, log: Path, text: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content = log.read_text()
        if text in content:
            return content
        if proc.poll() is not None:
            pytest.fail(f"supervisor exited {proc.returncode} before {text!r}:\n{content}")
        time.sleep(0.3)
    pytest.fail(f"no {text!r} within {seconds:.0f} s:\n{log.read_text()}")


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (taken while the tree is still intact)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie has exited; only its parent's wait is missing
            alive.add(pid)
    return alive


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _alive(pids):
        time.sleep(0.3)
    return _alive(pids)


def _kill_leftovers(pids: set[int]) -> None:
    for pid in _alive(pids):
        os.kill(pid, signal.SIGKILL)


def _schedule_state(port: int, pause_note: str | None = None) -> tuple[bool, str]:
    """(paused, note) of the weekly payout schedule on the run's Temporal; pauses it first
    when `pause_note` is given."""

    async def call() -> tuple[bool, str]:
        client = await Client.connect(f"127.0.0.1:{port}")
        handle = client.get_schedule_handle(PAYOUT_SCHEDULE)
        if pause_note is not None:
            await handle.pause(note=pause_note)
        desc = await handle.describe()
        return desc.schedule.state.paused, desc.schedule.state.note

    return asyncio.run(call())


def _start_lifecycles(var_dir: Path, ports: list[int]) -> None:
    """Give the workers running workflows to hold in their cache when they are stopped."""
    env = {**_env(var_dir, ports), "TEMPORAL_ADDRESS": f"127.0.0.1:{ports[0]}"}
    started = []
    for booking in ("1", "2", "3"):
        out = subprocess.run(
            [str(BIN / "flask"), "trigger-booking-workflows", "lifecycle", booking],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        started.append(out.stdout)
    assert any("Started" in o or "Already running" in o for o in started), started


def _stop_and_check(proc: subprocess.Popen, children: set[int], log: Path) -> str:
    assert proc.wait(90) == 0
    assert _wait_gone(children, 30) == set()
    output = log.read_text()
    assert "all stopped" in output
    for bad in ("Traceback", "Fatal Python error", "_NotInWorkflowEventLoopError"):
        assert bad not in output, output
    return output


def test_no_child_outlives_the_supervisor_on_sighup_ctrl_c_or_sigkill(tmp_path):
    var_dir = tmp_path / "var"
    ports = _free_ports(3)
    repo_var_existed = (ROOT / "var").exists()

    # 1. Stopped by SIGHUP, as when its terminal is closed: an orderly stop. An admin had
    # paused the weekly payout in the meantime.
    log = tmp_path / "run1.log"
    proc = _start(var_dir, ports, log)
    children: set[int] = set()
    try:
        _wait_for_text(proc, log, BANNER, 120)
        children = _descendants(proc.pid)
        assert len(children) >= 3, children  # temporal, workers, console
        assert _schedule_state(ports[0], pause_note=NOTE) == (True, NOTE)
        proc.send_signal(signal.SIGHUP)
        _stop_and_check(proc, children, log)
    finally:
        proc.kill()
        _kill_leftovers(children)
    assert {"estuary.db", "temporal.db", "secret_key"} <= {p.name for p in var_dir.iterdir()}
    assert (ROOT / "var").exists() == repo_var_existed  # ESTUARY_VAR_DIR honoured

    # 2. Ctrl-C, which the terminal sends to the whole foreground process group, while the
    # workers hold running workflows. The second run synced the schedules again: the
    # paused one is still paused with its note.
    log = tmp_path / "run2.log"
    proc = _start(var_dir, ports, log)
    children = set()
    try:
        output = _wait_for_text(proc, log, BANNER, 120)
        assert f"still paused: {NOTE}" in output
        assert _schedule_state(ports[0]) == (True, NOTE)
        children = _descendants(proc.pid)
        _start_lifecycles(var_dir, ports)
        os.killpg(proc.pid, signal.SIGINT)
        output = _stop_and_check(proc, children, log)
    finally:
        proc.kill()
        _kill_leftovers(children)
    assert "Demo data already present" in output  # the second run resumed

    # 3. Killed outright: the children get their parent-death signal and stop too.
    log = tmp_path / "run3.log"
    proc = _start(var_dir, ports, log)
    children = set()
    try:
        _wait_for_text(proc, log, BANNER, 120)
        children = _descendants(proc.pid)
        assert len(children) >= 3, children
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert _wait_gone(children, 60) == set()
    finally:
        _kill_leftovers(children)


def test_no_banner_when_a_step_fails_and_nothing_is_left(tmp_path):
    var_dir = tmp_path / "var"
    ports = _free_ports(3)
    log = tmp_path / "fail.log"
    proc = _start(var_dir, ports, log, SCHEDULE_TIME_ZONE="Mars/Olympus")
    children: set[int] = set()
    try:
        _wait_for_text(proc, log, "temporal |", 60)
        children = _descendants(proc.pid)
        assert proc.wait(90) == 1
        assert _wait_gone(children, 30) == set()
    finally:
        proc.kill()
        _kill_leftovers(children)
    output = log.read_text()
    assert "'Mars/Olympus'" in output
    assert "Not started: the schedules could not be synced" in output
    assert BANNER not in output and "Console:" not in output


def test_a_busy_port_stops_it_before_the_database_is_touched(tmp_path):
    var_dir = tmp_path / "var"
    ports = _free_ports(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[2]))
        taken.listen()
        log = tmp_path / "busy.log"
        proc = _start(var_dir, ports, log)
        assert proc.wait(60) == 1
    output = log.read_text()
    assert f"CONSOLE_PORT={ports[2]}" in output and "port already in use" in output
    assert BANNER not in output
    assert not var_dir.exists()  # no migration, no seed, no Temporal state
