"""Maintenance workflows. Deterministic code only: the sandbox re-imports this module."""

from __future__ import annotations

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.maintenance import (
    AnchorResult,
    PruneResult,
    SecurityUpkeepInput,
    SecurityUpkeepResult,
)
from workers.temporal.base_workflows import StepsWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.maintenance.activities as activities


@workflow.defn
class SecurityUpkeepWorkflow(StepsWorkflow):
    @workflow.run
    async def run(self, inp: SecurityUpkeepInput) -> SecurityUpkeepResult:
        # Anchor first: it is the step whose delay matters (a deletion between two anchors
        # is only caught by the next one); pruning can wait for the next firing.
        self._step = "anchoring the audit chain head"
        anchored = await self.execute_activity(
            activities.anchor_audit_head, policy=policies.DATABASE, result_type=AnchorResult
        )
        self._done.append("anchored the audit chain head")
        self._step = "pruning sign-in records"
        pruned = await self.execute_activity(
            activities.prune_signin_records, policy=policies.DATABASE, result_type=PruneResult
        )
        self._done.append("pruned sign-in records")
        self._step = "done"
        return SecurityUpkeepResult(pruned=pruned, anchored=anchored)
