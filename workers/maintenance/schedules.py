"""Maintenance schedules (`flask schedules sync` creates them)."""

from __future__ import annotations

from estuary.contracts.catalogue import ScheduleDefinition
from estuary.contracts.maintenance import SecurityUpkeepInput


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
