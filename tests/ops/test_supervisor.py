"""`make run`'s supervisor (scripts/run_dev.py) on free ports with its own var dir: the
ports are checked before the database is touched, the banner comes only when everything
is up, and no child outlives it, whether it is stopped by SIGHUP (terminal closed) or
killed outright with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = ROOT / "scripts" / "run_dev.py"
BANNER = "Ctrl-C stops everything."

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


def _start(var_dir: Path, ports: list[int], log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, str(SUPERVISOR)],
            cwd=ROOT,
            env=_env(var_dir, ports),
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


def test_no_child_outlives_the_supervisor_on_sighup_or_sigkill(tmp_path):
    var_dir = tmp_path / "var"
    ports = _free_ports(3)
    repo_var_existed = (ROOT / "var").exists()

    # 1. Stopped by SIGHUP, as when its terminal is closed: an orderly stop.
    log = tmp_path / "run1.log"
    proc = _start(var_dir, ports, log)
    children: set[int] = set()
    try:
        _wait_for_text(proc, log, BANNER, 120)
        children = _descendants(proc.pid)
        assert len(children) >= 3, children  # temporal, workers, console
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(90) == 0
        assert _wait_gone(children, 30) == set()
    finally:
        proc.kill()
        _kill_leftovers(children)
    output = log.read_text()
    assert "all stopped" in output
    for bad in ("Traceback", "Fatal Python error", "_NotInWorkflowEventLoopError"):
        assert bad not in output, output
    assert {"estuary.db", "temporal.db", "secret_key"} <= {p.name for p in var_dir.iterdir()}
    assert (ROOT / "var").exists() == repo_var_existed  # ESTUARY_VAR_DIR honoured

    # 2. Killed outright: the children get their parent-death signal and stop too.
    log = tmp_path / "run2.log"
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
    assert "Demo data already present" in log.read_text()  # the second run resumed


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
