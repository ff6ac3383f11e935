"""Start the development stack: Temporal dev server, all workers, the console.

Used by `make run`. First it checks that the three ports are free (before anything
touches the database), then migrates the database and seeds the demo data, then starts
Temporal, syncs the schedules, and starts the workers and the console; once the workers
poll, it starts the demo's workflows (`flask seed-demo-runs`, once: a second run starts
nothing twice). Logs of all of
them go to this terminal, each line prefixed with its process name. The banner is printed
only once every process is up.

Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stop the console, then the workers (their
in-flight activities finish), then Temporal. The children cannot outlive this process:
each runs in its own process group (so Ctrl-C reaches only us and we stop them in order)
and is given a parent-death signal, so even a SIGKILL of this process stops them.
Temporal keeps its state in $ESTUARY_VAR_DIR/temporal.db (default ./var), so the next
`make run` resumes with the same workflows.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from estuary.contracts.search_attributes import dev_server_flags  # noqa: E402

BIN = Path(sys.executable).parent
VAR = Path(os.environ.get("ESTUARY_VAR_DIR") or ROOT / "var")
PORTS = {
    name: int(os.environ.get(name) or default)
    for name, default in (
        ("TEMPORAL_PORT", 7233),
        ("TEMPORAL_UI_PORT", 8233),
        ("CONSOLE_PORT", 5000),
    )
}
COLOURS = {"temporal": "\033[36m", "workers": "\033[33m", "console": "\033[32m"}
RESET = "\033[0m"
# The workers print this once per task queue when they poll (workers/temporal/worker.py).
WORKERS_READY = "worker polling task queue"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def say(text: str) -> None:
    """Print, never failing: after SIGHUP the terminal is gone and writes raise EIO."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _die_with(parent_pid: int) -> None:
    """In the child, before exec: SIGTERM when the parent dies, however it dies.

    The signal is tied to the thread that forked the child, so every child is started
    from the main thread, which lives until the end of `main`.
    """
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class Child:
    """One supervised process: its output pumped to our stdout, its readiness tracked."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], ready_line: str = ""):
        self.name = name
        self.ready = threading.Event()
        self._ready_line = ready_line
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            process_group=0,
            preexec_fn=functools.partial(_die_with, os.getpid()),
        )
        self._pump = threading.Thread(target=self._pump_output, name=f"pump-{name}", daemon=True)
        self._pump.start()

    def _pump_output(self) -> None:
        colour = COLOURS.get(self.name, "") if sys.stdout.isatty() else ""
        end = RESET if colour else ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self._ready_line and self._ready_line in line:
                self.ready.set()
            say(f"{colour}{self.name:>8}{end} | {line.rstrip()}")

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, seconds: float = 30) -> None:
        """SIGTERM its process group, wait, then SIGKILL what is left."""
        if self.running():
            say(f"stopping {self.name} ...")
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(seconds)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop within {seconds:.0f} s; killing it")
        self._signal(signal.SIGKILL)  # anything it left in its group
        self.proc.wait()
        self._pump.join(timeout=5)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def busy_ports(ports: dict[str, int]) -> list[str]:
    """The settings whose port something on this machine already listens on."""
    busy = []
    for name, port in ports.items():
        with socket.socket() as s:
            # SO_REUSEADDR: a socket of a previous run in TIME_WAIT does not count as busy,
            # a listener does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{name}={port}")
    return busy


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(
    condition: Callable[[], bool], children: list[Child], stopping: threading.Event, seconds: float
) -> str:
    """'' once `condition` holds; else why not (a child exited, we were told to stop, or
    the time ran out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return ""
        if stopping.is_set():
            return "stopped by a signal"
        for child in children:
            if not child.running():
                return f"{child.name} exited with code {child.proc.returncode}"
        stopping.wait(0.2)
    return f"not ready within {seconds:.0f} s"


def run_step(name: str, args: list[str], env: dict[str, str], stopping: threading.Event) -> bool:
    """Run one setup command as a supervised child; True if it succeeded."""
    child = Child(name, args, env)
    while child.running():
        if stopping.is_set():
            child.stop()
            return False
        stopping.wait(0.2)
    child.stop()
    if child.proc.returncode != 0:
        say(f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(args))}` failed")
        return False
    return True


def main() -> int:
    busy = busy_ports(PORTS)
    if busy:
        say(
            f"port already in use: {', '.join(busy)}. Is another `make run` running? "
            "Stop it, or choose other ports with TEMPORAL_PORT, TEMPORAL_UI_PORT and "
            "CONSOLE_PORT. Nothing was started and the database was not touched."
        )
        return 1
    VAR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "FLASK_APP": "estuary_ops",
        "PYTHONUNBUFFERED": "1",
        "ESTUARY_VAR_DIR": str(VAR),
    }
    env.setdefault("TEMPORAL_ADDRESS", f"127.0.0.1:{PORTS['TEMPORAL_PORT']}")
    env.setdefault("TEMPORAL_UI_URL", f"http://127.0.0.1:{PORTS['TEMPORAL_UI_PORT']}")

    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)

    flask = str(BIN / "flask")
    if not run_step("migrate", [flask, "db", "upgrade"], env, stopping):
        return 1
    if not run_step("seed", [flask, "seed-demo"], env, stopping):
        return 1

    children: list[Child] = []
    failure = ""
    try:
        temporal = Child(
            "temporal",
            [
                str(BIN / "temporal"),
                "server",
                "start-dev",
                "--db-filename",
                str(VAR / "temporal.db"),
                "--ip",
                "127.0.0.1",
                "--port",
                str(PORTS["TEMPORAL_PORT"]),
                "--ui-port",
                str(PORTS["TEMPORAL_UI_PORT"]),
                # The Web UI asks the console to decrypt payloads (docs/deployment.md).
                "--ui-codec-endpoint",
                f"http://127.0.0.1:{PORTS['CONSOLE_PORT']}/codec",
                "--log-level",
                "error",
                *dev_server_flags(),
            ],
            env,
        )
        children.append(temporal)
        failure = wait_for(lambda: _port_open(PORTS["TEMPORAL_PORT"]), children, stopping, 60)
        if failure:
            failure = f"Temporal dev server: {failure}"
        elif not run_step("schedules", [flask, "schedules", "sync"], env, stopping):
            failure = "the schedules could not be synced"
        if not failure:
            workers = Child("workers", [flask, "start-all-workers"], env, WORKERS_READY)
            children.append(workers)
            console = Child(
                "console",
                [flask, "run", "--host", "127.0.0.1", "--port", str(PORTS["CONSOLE_PORT"])],
                env,
            )
            children.append(console)
            failure = wait_for(
                lambda: workers.ready.is_set() and _port_open(PORTS["CONSOLE_PORT"]),
                children,
                stopping,
                60,
            )
        if not failure and not run_step("demo", [flask, "seed-demo-runs"], env, stopping):
            # Not fatal: the console works without them; the log above says what failed.
            say("  The demo workflows were not all started; the console runs without them.")
        if failure:
            if not stopping.is_set():
                say(f"\n  Not started: {failure}; see the log above. Stopping.\n")
        else:
            say(
                f"\n  Console:         http://127.0.0.1:{PORTS['CONSOLE_PORT']}\n"
                f"  Temporal Web UI: http://127.0.0.1:{PORTS['TEMPORAL_UI_PORT']}\n"
                f"  Temporal gRPC:   127.0.0.1:{PORTS['TEMPORAL_PORT']}\n"
                f"  Data:            {VAR}\n"
                "  Ctrl-C stops everything.\n"
            )
            failure = wait_for(lambda: False, children, stopping, float("inf"))
            if not stopping.is_set():
                say(f"{failure}; stopping the rest")
    finally:
        # Console first, then workers (they finish in-flight activities), then Temporal.
        for child in reversed(children):
            child.stop()
    say("all stopped")
    # 0 only when we were asked to stop; a child that failed or exited on its own is 1.
    return 0 if stopping.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
