"""Acting on an entity whose workflow has not started: a booking with no lifecycle run can
still be cancelled or rescheduled from its page. The form names the entity; the server
builds the workflow's input from it alone (the business id must be the one the form was
drawn for), starts the run (audited on its own, like any start), and then sends the
update, waiting while the new run loads its entity.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from flask_login import current_user

from dashboard.writes import record
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.contracts.inputs import parse_input
from estuary.services.staff import staff_ref
from temporal_gateway.access import gateway
from temporal_gateway.gateway import StartedRun, UpdateRejected

# A new run refuses updates until its first activity has loaded the entity.
STARTING_WORDS = "still starting"
STARTING_WAIT_SECONDS = 15.0


def entity_input(wf: RegisteredWorkflow, entity_type: str, entity_id: int) -> Any:
    """The workflow's input built from the entity id alone, or None if it needs more."""
    key = f"{entity_type}_id"
    names = {f.name for f in dataclasses.fields(wf.spec.input_type)}
    if key not in names:
        return None
    try:
        return parse_input(wf.spec.input_type, {key: str(entity_id)})
    except Exception:  # the input needs more than the entity id
        return None


def entity_business_id(wf: RegisteredWorkflow, entity_type: str, entity_id: int) -> str | None:
    """The workflow id of this entity's run of `wf`, when it depends on the entity only."""
    payload = entity_input(wf, entity_type, entity_id)
    if payload is None:
        return None
    try:
        first = wf.spec.business_id(payload, datetime(2001, 1, 1, tzinfo=UTC))
        second = wf.spec.business_id(payload, datetime(2002, 6, 7, 8, 9, 10, tzinfo=UTC))
    except Exception:  # the business key needs more than the entity id
        return None
    return first if first == second else None


def start_for_entity(wf: RegisteredWorkflow, entity_id: int, why: str) -> StartedRun:
    """Start the entity's run of `wf` (or find the one running), audited as a start."""
    payload = entity_input(wf, wf.spec.entity_type, entity_id)
    started = gateway().start(
        wf.name,
        payload,
        triggered_by=current_user.email,
        triggered_by_ref=staff_ref(current_user),
        reason=why,
    )
    record(
        "success",
        target=f"workflow:{started.workflow_id}",
        params={f"{wf.spec.entity_type}_id": entity_id, "started_for": why},
        reason=why,
        detail=(
            f"already running, run {started.run_id}"
            if started.existing
            else f"started run {started.run_id} to act on {wf.spec.entity_type} {entity_id}"
        ),
    )
    return started


def update_once_loaded(workflow_id: str, name: str, arg: Any) -> Any:
    """Send the update, again for a few seconds while the new run is still starting."""
    deadline = time.monotonic() + STARTING_WAIT_SECONDS
    while True:
        try:
            return gateway().update(workflow_id, name, arg)
        except UpdateRejected as exc:
            if STARTING_WORDS not in exc.message or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
