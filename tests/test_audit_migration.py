"""Upgrading a database whose audit log predates the keyed chain: the migration numbers
the old rows in order, `flask audit verify` accepts them as the unkeyed prefix, and new
rows (here from a `flask` command) are signed and chain onto them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from estuary.models import AuditEvent
from estuary.services import audit

ROOT = Path(__file__).resolve().parent.parent


def _flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    flask = str(Path(sys.executable).parent / "flask")
    return subprocess.run([flask, *args], cwd=ROOT, env=env, capture_output=True, text=True)


def _legacy_rows(path: Path, count: int) -> None:
    """Rows as the unkeyed chain wrote them (ids with a gap, as a retried append leaves)."""
    conn = sqlite3.connect(path)
    prev = audit.GENESIS
    for i, row_id in enumerate([1, 2, 5][:count]):
        event = AuditEvent(
            occurred_at=datetime(2026, 11, 30, 9, i, tzinfo=UTC),
            actor="ada@test.local",
            role="approver",
            action="approvals.approve",
            target=f"payout:{i}",
            params_json="{}",
            reason="",
            outcome="success",
            detail="",
            client_addr="127.0.0.1",
            request_id=f"req-{i}",
            prev_hash=prev,
        )
        digest = audit._digest(event)
        conn.execute(
            "INSERT INTO audit_event (id, occurred_at, actor, role, action, target, params_json,"
            " reason, outcome, detail, client_addr, request_id, prev_hash, hash) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row_id, event.occurred_at.replace(tzinfo=None).isoformat(sep=" "), event.actor,
             event.role, event.action, event.target, "{}", "", "success", "", "127.0.0.1",
             event.request_id, prev, digest),
        )  # fmt: skip
        prev = digest
    conn.commit()
    conn.close()


def test_legacy_audit_rows_survive_the_upgrade(tmp_path):
    db_path = tmp_path / "legacy.db"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DATABASE_URL": f"sqlite:///{db_path}",
        "ESTUARY_VAR_DIR": str(tmp_path),
        "AUDIT_ANCHOR_PATH": str(tmp_path / "anchor.log"),
        "FLASK_APP": "estuary_ops",
        "HOME": str(tmp_path),
    }
    assert _flask(env, "db", "upgrade", "3b0b9617936e").returncode == 0
    _legacy_rows(db_path, 3)
    up = _flask(env, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    seqs = sqlite3.connect(db_path).execute("SELECT id, seq, key_id FROM audit_event").fetchall()
    assert seqs == [(1, 1, ""), (2, 2, ""), (5, 3, "")]
    first = _flask(env, "audit", "verify")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 events verified" in first.stdout
    assert "predates the keyed chain" in first.stderr
    created = _flask(env, "users", "create", "--email", "ops@test.local", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    second = _flask(env, "audit", "verify")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "4 events verified" in second.stdout and "Head anchored: sequence number 4" in (
        second.stdout
    )
