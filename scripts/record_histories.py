"""`make record-histories`: record workflow histories from the current code for replay.

Runs the workflow tests below on the time-skipping server with ESTUARY_RECORD_HISTORIES
set, so every test's real workers note the runs they execute and write the longest closed
history of each workflow type to tests/histories/<WorkflowType>/<module>--<test>.json
(tests/history_recording.py). Takes about a minute. Afterwards it checks that every
registered workflow has at least one history, and prints what it wrote.

Run it on the released code (before changing a workflow), commit the files, and keep them:
tests/test_replay_histories.py replays all of them against the workers' current code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORIES = ROOT / "tests" / "histories"
# Time-skipping workflow tests that together run every registered workflow.
SCENARIO_TESTS = [
    "tests/payments/test_payout_workflow.py",
    "tests/payments/test_payout_lifecycle.py",
    "tests/payments/test_batch_payout.py",
    "tests/payments/test_package_payout.py",
    "tests/payments/test_commissions.py",
    "tests/bookings/test_lifecycle.py",
    "tests/bookings/test_rescheduling.py",
    "tests/bookings/test_batch_reminders.py",
    "tests/practitioners/test_onboarding.py",
    "tests/practitioners/test_renewal.py",
    "tests/practitioners/test_verification_and_training.py",
    "tests/test_foundation_smoke.py",
    "tests/test_maintenance.py",
]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from workers.temporal import registry

    started = time.time()
    before = {p: p.stat().st_mtime for p in HISTORIES.rglob("*.json")}
    env = {**os.environ, "ESTUARY_RECORD_HISTORIES": str(HISTORIES)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SCENARIO_TESTS],
        cwd=ROOT,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        print("record-histories: a scenario test failed; fix it before recording", file=sys.stderr)
        return result.returncode
    written = sorted(p for p in HISTORIES.rglob("*.json") if before.get(p) != p.stat().st_mtime)
    covered = {p.parent.name for p in HISTORIES.rglob("*.json")}
    missing = sorted(w.name for w in registry.all_workflows() if w.name not in covered)
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"{len(written)} histories written in {time.time() - started:.0f} s")
    if missing:
        print(f"record-histories: no history for {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
