"""The maintenance upkeep: a Temporal Schedule every 5 minutes runs SecurityUpkeepWorkflow
on the `maintenance` queue, which anchors the audit chain head in the anchor file and
prunes old sign-in attempts, ended sessions and spent throttle counters."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from estuary.contracts.maintenance import SecurityUpkeepInput
from estuary.db import db
from estuary.models import LoginAttempt, SignInThrottle, StaffSession
from estuary.models.base import utcnow
from estuary.services import audit
from tests.conftest import make_user, running_workers
from workers.maintenance.workflows import SecurityUpkeepWorkflow
from workers.temporal.schedules import definitions


def test_the_upkeep_runs_every_five_minutes_on_its_own_queue():
    (defn,) = [d for d in definitions() if d.schedule_id == "maintenance-security-upkeep"]
    assert defn.workflow_name == "SecurityUpkeepWorkflow"
    assert defn.cron == "*/5 * * * *"
    assert defn.make_input().requested_by == "schedule:security-upkeep"


def _seed(app) -> int:
    user = make_user(app, "viewer", email="old@test.local")
    old = utcnow() - timedelta(days=app.config["SIGNIN_RETENTION_DAYS"] + 1)
    with app.app_context():
        db.session.add_all(
            [
                LoginAttempt(email="old@test.local", client_addr="10.0.0.1", succeeded=False,
                             attempted_at=old),
                LoginAttempt(email="new@test.local", client_addr="10.0.0.1", succeeded=False),
                StaffSession(token=uuid.uuid4().hex, user_id=user.id, created_at=old,
                             last_seen_at=old, ended_at=old),
                StaffSession(token=uuid.uuid4().hex, user_id=user.id),
                SignInThrottle(key="addr:10.0.0.9", attempts=3, window_start=0, next_allowed=0),
            ]
        )  # fmt: skip
        db.session.commit()
        for i in range(3):
            audit.record(action="test.action", target=f"thing:{i}", actor="t", role="-")
        return 3


async def test_upkeep_anchors_the_head_and_prunes(app, time_env, tmp_path):
    anchor = tmp_path / "anchor.log"
    app.config["AUDIT_ANCHOR_PATH"] = str(anchor)
    head = _seed(app)
    async with running_workers(time_env.client, app, ["maintenance"]) as prefix:
        result = await time_env.client.execute_workflow(
            SecurityUpkeepWorkflow.run,
            SecurityUpkeepInput(requested_by="test"),
            id=f"maintenance-upkeep-{uuid.uuid4().hex[:8]}",
            task_queue=f"{prefix}maintenance",
        )
        # a second firing with nothing new: nothing anchored twice, nothing left to prune
        again = await time_env.client.execute_workflow(
            SecurityUpkeepWorkflow.run,
            SecurityUpkeepInput(requested_by="test"),
            id=f"maintenance-upkeep-{uuid.uuid4().hex[:8]}",
            task_queue=f"{prefix}maintenance",
        )
    assert (result.pruned.login_attempts, result.pruned.sessions, result.pruned.counters) == (
        1,
        1,
        1,
    )
    assert result.anchored.seq == head and result.anchored.line == 1
    assert (again.pruned.login_attempts, again.anchored.line) == (0, 1)
    lines = anchor.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["seq"] == head
    with app.app_context():
        assert db.session.scalar(select(func.count(LoginAttempt.id))) == 1
        assert db.session.scalar(select(func.count(StaffSession.id))) == 1
        assert audit.verify(anchor=False).ok


async def test_a_tampered_anchor_fails_the_run_without_retrying(app, time_env, tmp_path):
    from temporalio.client import WorkflowFailureError

    anchor = tmp_path / "anchor.log"
    anchor.write_text("not an anchor\n")
    app.config["AUDIT_ANCHOR_PATH"] = str(anchor)
    _seed(app)
    async with running_workers(time_env.client, app, ["maintenance"]) as prefix:
        with pytest.raises(WorkflowFailureError) as caught:
            await time_env.client.execute_workflow(
                SecurityUpkeepWorkflow.run,
                SecurityUpkeepInput(requested_by="test"),
                id=f"maintenance-upkeep-{uuid.uuid4().hex[:8]}",
                task_queue=f"{prefix}maintenance",
            )
    assert "audit anchor refused: anchor file line 1" in str(caught.value.cause.cause)
    assert anchor.read_text() == "not an anchor\n"
