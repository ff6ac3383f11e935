"""ReschedulingWorkflow: moves a booking into a new booking and hands the old lifecycle over.

Deterministic code only (the sandbox re-imports this module): time is `workflow.now()`,
every timer is computed from it when it is set, all I/O is activities.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    FailureError,
    WorkflowAlreadyStartedError,
)

from estuary.contracts import policies
from estuary.contracts.failures import innermost_message
from estuary.contracts.search_attributes import TRIGGERED_BY
from workers.temporal.base_workflows import BaseWorkflow, as_utc, progress_answer, refusal

# The shared dataclasses pass through the sandbox too: the payload converter recognises
# `datetime` fields only by the real class, not the sandbox's restricted stand-in.
with workflow.unsafe.imports_passed_through():
    from estuary.contracts.bookings import (
        BookingLifecycleInput,
        BookingNoticeInput,
        RescheduledAwayArg,
        RescheduleRequestInput,
        ReschedulingInput,
        ReschedulingResult,
        lifecycle_workflow_id,
        utc_iso,
    )
from workers.bookings.lifecycle.workflows import BookingLifecycleWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.bookings.activities as shared_activities
    import workers.bookings.rescheduling.activities as activities


@workflow.defn
class ReschedulingWorkflow(BaseWorkflow):
    @workflow.init
    def __init__(self, inp: ReschedulingInput) -> None:
        self._input = inp
        self._stage = "starting"
        self._steps_done: list[str] = []
        self._new_booking_id: int | None = None
        self._created: bool | None = None

    @workflow.run
    async def run(self, inp: ReschedulingInput) -> ReschedulingResult:
        info = workflow.info()
        # The memo names the person (it is encrypted); the search attribute holds only a
        # reference such as staff:12 when the console started the run.
        actor = (
            workflow.memo_value("triggered_by", None, type_hint=str)
            or info.typed_search_attributes.get(TRIGGERED_BY)
            or "workflow"
        )
        request = RescheduleRequestInput(
            booking_id=inp.booking_id,
            new_start_at=as_utc(inp.new_start_at),
            reschedule_key=info.workflow_id,
            reason=inp.reason,
            actor=actor,
            workflow_time=workflow.now(),
        )
        self._stage = "validating the new slot"
        try:
            await self.execute_activity(
                activities.check_reschedule, request, policy=policies.DATABASE
            )
            self._steps_done.append("new slot validated")
            self._stage = "creating the new booking"
            created = await self.execute_activity(
                activities.create_rescheduled_booking,
                dataclasses.replace(request, workflow_time=workflow.now()),
                policy=policies.DATABASE,
            )
        except ActivityError as err:
            raise refusal(innermost_message(err)) from err
        new_id = created.new_booking_id
        assert new_id is not None
        self._new_booking_id, self._created = new_id, created.created
        self._steps_done.append(
            f"new booking {new_id} {'created' if created.created else 'found (request repeated)'}"
        )

        new_lifecycle_id = await self._hand_over(inp, actor, new_id)

        await self._notify(inp, new_id, created.new_start_at)
        self._stage = "done"
        return ReschedulingResult(
            old_booking_id=inp.booking_id,
            new_booking_id=new_id,
            new_start_at=utc_iso(created.new_start_at),
            lifecycle_workflow_id=new_lifecycle_id,
            created=created.created,
        )

    async def _notify(self, inp: ReschedulingInput, new_id: int, new_start_at: datetime) -> None:
        """Tell the client and the practitioner where the session moved."""
        self._stage = "notifying"
        await self.execute_activity(
            shared_activities.send_booking_notice,
            BookingNoticeInput(
                booking_id=inp.booking_id,
                kind="rescheduled",
                audience=["client", "practitioner"],
                workflow_time=workflow.now(),
                key_suffix=str(new_id),
                details={
                    "new_booking_id": str(new_id),
                    "new_start_at": utc_iso(new_start_at),
                    "reason": inp.reason,
                },
            ),
            policy=policies.NOTIFICATION,
        )
        self._steps_done.append("both parties notified")

    async def _hand_over(self, inp: ReschedulingInput, actor: str, new_id: int) -> str:
        """End the old booking's lifecycle and start the new one's; its workflow id."""
        self._stage = "ending the old lifecycle"
        old_lifecycle = workflow.get_external_workflow_handle(lifecycle_workflow_id(inp.booking_id))
        try:
            await old_lifecycle.signal(
                BookingLifecycleWorkflow.rescheduled_away,
                RescheduledAwayArg(actor=actor, new_booking_id=new_id, reason=inp.reason),
            )
            self._steps_done.append("old lifecycle told")
        except FailureError:
            self._steps_done.append("old lifecycle not running")

        self._stage = "starting the new lifecycle"
        new_lifecycle_id = lifecycle_workflow_id(new_id)
        try:
            await workflow.start_child_workflow(
                BookingLifecycleWorkflow.run,
                BookingLifecycleInput(booking_id=new_id),
                id=new_lifecycle_id,
                task_queue=workflow.info().task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=self.child_search_attributes("booking", new_id),
            )
            self._steps_done.append(f"lifecycle {new_lifecycle_id} started")
        except WorkflowAlreadyStartedError:
            self._steps_done.append(f"lifecycle {new_lifecycle_id} already started")
        return new_lifecycle_id

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return progress_answer(
            self._stage,
            self._steps_done,
            booking_id=self._input.booking_id,
            new_start_at=utc_iso(self._input.new_start_at),
            new_booking_id=self._new_booking_id,
            created=self._created,
        )
