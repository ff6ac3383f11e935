"""Start the development stack: Temporal dev server, all workers, the console.

Used by `make run`. Logs of all three go to this terminal, each line prefixed with its
process name. Ctrl-C (or SIGTERM) stops all three cleanly; Temporal keeps its state in
var/temporal.db, so the next `make run` resumes with the same workflows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.temporal.search_attributes import dev_server_flags  # noqa: E402

BIN = Path(sys.executable).parent
VAR = Path(os.environ.get("ESTUARY_VAR_DIR", ROOT / "var"))
TEMPORAL_PORT = int(os.environ.get("TEMPORAL_PORT", "7233"))
TEMPORAL_UI_PORT = int(os.environ.get("TEMPORAL_UI_PORT", "8233"))
CONSOLE_PORT = int(os.environ.get("CONSOLE_PORT", "5000"))
COLOURS = {"temporal": "\033[36m", "workers": "\033[33m", "console": "\033[32m"}
RESET = "\033[0m"


def _pump(name: str, proc: subprocess.Popen) -> None:
    colour = COLOURS.get(name, "") if sys.stdout.isatty() else ""
    end = RESET if colour else ""
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(f"{colour}{name:>8}{end} | {line}")
        sys.stdout.flush()


def _start(name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # Ctrl-C reaches us; we stop children in order
    )
    threading.Thread(target=_pump, args=(name, proc), daemon=True).start()
    return proc


def _wait_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def _stop(name: str, proc: subprocess.Popen, seconds: float = 25) -> None:
    if proc.poll() is not None:
        return
    print(f"stopping {name} ...", flush=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FLASK_APP": "dashboard", "PYTHONUNBUFFERED": "1"}
    env.setdefault("TEMPORAL_ADDRESS", f"127.0.0.1:{TEMPORAL_PORT}")
    env.setdefault("TEMPORAL_UI_URL", f"http://127.0.0.1:{TEMPORAL_UI_PORT}")

    if _wait_port(TEMPORAL_PORT, 0.3):
        print(f"port {TEMPORAL_PORT} is already in use: is another `make run` running?")
        return 1
    procs: list[tuple[str, subprocess.Popen]] = []
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    temporal = _start(
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
            str(TEMPORAL_PORT),
            "--ui-port",
            str(TEMPORAL_UI_PORT),
            # The Web UI asks the console to decrypt payloads (docs/deployment.md).
            "--ui-codec-endpoint",
            f"http://127.0.0.1:{CONSOLE_PORT}/codec",
            "--log-level",
            "error",
            *dev_server_flags(),
        ],
        env,
    )
    procs.append(("temporal", temporal))
    try:
        if not _wait_port(TEMPORAL_PORT, 30):
            print("Temporal dev server did not start; see its log above")
            return 1
        flask = str(BIN / "flask")
        sync = subprocess.run([flask, "schedules", "sync"], cwd=ROOT, env=env, check=False)
        if sync.returncode != 0:
            print("warning: `flask schedules sync` failed; schedules are not set up")
        procs.append(("workers", _start("workers", [flask, "start-all-workers"], env)))
        procs.append(
            (
                "console",
                _start(
                    "console",
                    [flask, "run", "--host", "127.0.0.1", "--port", str(CONSOLE_PORT)],
                    env,
                ),
            )
        )
        if _wait_port(CONSOLE_PORT, 20):
            print(
                f"\n  Console:         http://127.0.0.1:{CONSOLE_PORT}\n"
                f"  Temporal Web UI: http://127.0.0.1:{TEMPORAL_UI_PORT}\n"
                f"  Temporal gRPC:   127.0.0.1:{TEMPORAL_PORT}\n"
                "  Ctrl-C stops everything.\n",
                flush=True,
            )
        while not stopping.is_set():
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the rest")
                    stopping.set()
                    break
            stopping.wait(0.5)
    finally:
        # Console first, then workers (they finish in-flight activities), then Temporal.
        for name, proc in reversed(procs):
            _stop(name, proc)
    print("all stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
