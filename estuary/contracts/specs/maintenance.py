"""The maintenance domain's workflow and schedule (the class is in
`workers/maintenance/workflows.py`)."""

from __future__ import annotations

from estuary.contracts.maintenance import SecurityUpkeepInput
from estuary.contracts.spec import ScheduleDefinition, WorkflowSpec, for_all, timestamped_id

DOMAIN = "maintenance"

WORKFLOWS = (
    WorkflowSpec(
        name="SecurityUpkeepWorkflow",
        domain=DOMAIN,
        input_type=SecurityUpkeepInput,
        description=(
            "Prunes old sign-in attempts and ended sessions, and anchors the audit chain "
            "head in the anchor file outside the database (every 5 minutes on a schedule)."
        ),
        business_id=timestamped_id("maintenance-security-upkeep"),
        entity_type="audit",
        entity_id=for_all,
    ),
)


def upkeep_input() -> SecurityUpkeepInput:
    return SecurityUpkeepInput(requested_by="schedule:security-upkeep")


SCHEDULES = [
    ScheduleDefinition(
        schedule_id="maintenance-security-upkeep",
        workflow_name="SecurityUpkeepWorkflow",
        make_input=upkeep_input,
        # The audit anchor's freshness: a deletion of the newest events is caught once
        # the next anchor is older than them, so at most 5 minutes go unanchored.
        cron="*/5 * * * *",
        description="Anchor the audit chain head; prune sign-in attempts and ended sessions",
        workflow_id_prefix="maintenance-security-upkeep",
    )
]
