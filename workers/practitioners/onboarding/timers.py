"""The onboarding steps' timing: deadline, reminders, stalls, extensions, progress sync.

Workflow code (the sandbox re-imports it): `OnboardingTimers` is a base of
`PractitionerOnboardingWorkflow`, whose `__init__` sets the state these methods use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from estuary.contracts import policies
from estuary.contracts.practitioners import (
    ModuleCompletionInput,
    OnboardingProgressInput,
    OnboardingReminderInput,
    StalledOnboardingInput,
)
from workers.temporal.base_workflows import BaseWorkflow, iso, note_ignored

with workflow.unsafe.imports_passed_through():
    import workers.practitioners.activities as shared_activities
    import workers.practitioners.onboarding.activities as activities


class Step:
    """One onboarding step's state: its deadline, reminders, stalls and extensions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "pending"  # pending / waiting / stalled / done / rejected
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.deadline: datetime | None = None
        self.waiting_for: str | None = None
        self.waiting_on = "practitioner"  # who owes the next action: practitioner/ops/provider
        # Reminders count from the start of the current phase (a document resubmission
        # starts a new phase with a fresh deadline).
        self.phase_started_at: datetime | None = None
        self.next_reminder = 0
        self.reminders_sent: list[dict] = []
        self.stalls: list[dict] = []
        self.extensions: list[dict] = []
        self.open_flag_key: str | None = None

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "started_at": iso(self.started_at),
            "deadline": iso(self.deadline),
            "completed_at": iso(self.completed_at),
            "stalled": self.state == "stalled",
            "waiting_for": self.waiting_for if self.state in ("waiting", "stalled") else None,
            "waiting_on": self.waiting_on if self.state in ("waiting", "stalled") else None,
            "reminders_sent": list(self.reminders_sent),
            "stalls": list(self.stalls),
            "extensions": list(self.extensions),
        }


class OnboardingTimers(BaseWorkflow):
    """Step bookkeeping shared by the six steps (state: see the workflow's `__init__`)."""

    def _reminder_offsets(self) -> list[timedelta]:
        return [
            timedelta(days=d)
            for d in self._inp.reminder_days
            if 0 < d < self._inp.step_deadline_days
        ]

    async def _begin_step(
        self, name: str, waiting_for: str, waiting_on: str = "practitioner"
    ) -> Step:
        step = self._steps[name]
        now = workflow.now()
        self._current = name
        step.state = "waiting"
        step.started_at = now
        self._restart_phase(step)
        step.waiting_for = waiting_for
        step.waiting_on = waiting_on
        await self._sync()
        return step

    def _restart_phase(self, step: Step) -> None:
        now = workflow.now()
        step.phase_started_at = now
        step.deadline = now + timedelta(days=self._inp.step_deadline_days)
        step.next_reminder = 0
        if step.state == "stalled":
            step.state = "waiting"
        if step.open_flag_key:
            self._flags_to_resolve.append(step.open_flag_key)
            step.open_flag_key = None

    async def _set_waiting(
        self, step: Step, waiting_for: str, waiting_on: str = "practitioner"
    ) -> None:
        step.waiting_for = waiting_for
        step.waiting_on = waiting_on
        await self._sync()

    async def _wait(self, step: Step, done: Callable[[], bool]) -> bool:
        """Wait until `done()`; reminders go out and the deadline passes on the way.

        Past the deadline the step is stalled and the wait goes on (without a timer)
        until the step is done, extended (which re-plans) or the onboarding rejected.
        Returns False when the onboarding was rejected.
        """
        offsets = self._reminder_offsets()
        while True:
            if self._rejection is not None:
                return False
            if done():
                return True
            now = workflow.now()
            assert step.phase_started_at is not None and step.deadline is not None
            if step.state != "stalled":
                due = [
                    i
                    for i in range(step.next_reminder, len(offsets))
                    if step.phase_started_at + offsets[i] <= now
                ]
                if due:
                    step.next_reminder = due[-1] + 1
                    await self._send_reminder(
                        step, due[-1] + 1, step.phase_started_at + offsets[due[-1]]
                    )
                    continue
                if step.deadline <= now:
                    await self._stall(step)
                    continue
            wake_at: list[datetime] = []
            if step.state != "stalled":
                if step.next_reminder < len(offsets):
                    wake_at.append(step.phase_started_at + offsets[step.next_reminder])
                wake_at.append(step.deadline)
            wake = self._wake
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda wake=wake: done() or self._rejection is not None or self._wake != wake,
                    timeout=(min(wake_at) - now) if wake_at else None,
                    timeout_summary=f"{step.name}: next reminder or deadline",
                )

    async def _send_reminder(self, step: Step, number: int, due_at: datetime) -> None:
        sent_at = workflow.now()
        await self.execute_activity(
            activities.send_onboarding_reminder,
            OnboardingReminderInput(
                practitioner_id=self._inp.practitioner_id,
                key=f"{self._run_key}:reminder:{step.name}:{len(step.reminders_sent) + 1}",
                step=step.name,
                number=number,
                waiting_for=step.waiting_for or "",
                waiting_on=step.waiting_on,
                deadline=iso(step.deadline) or "",
                sent_at=sent_at.isoformat(),
            ),
            policy=policies.NOTIFICATION,
        )
        step.reminders_sent.append(
            {
                "number": number,
                "due_at": due_at.isoformat(),
                "at": sent_at.isoformat(),
                "to": step.waiting_on,
            }
        )
        await self._sync()

    async def _stall(self, step: Step) -> None:
        step.state = "stalled"
        flag_key = f"{self._run_key}:stalled:{step.name}:{len(step.stalls) + 1}"
        step.open_flag_key = flag_key
        step.stalls.append(
            {
                "at": workflow.now().isoformat(),
                "deadline": iso(step.deadline),
                "flag_key": flag_key,
            }
        )
        await self.execute_activity(
            activities.flag_stalled_onboarding,
            StalledOnboardingInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                flag_key=flag_key,
                step=step.name,
                waiting_for=step.waiting_for or "",
                deadline=iso(step.deadline) or "",
            ),
        )
        await self._sync()

    async def _finish_step(self, name: str) -> None:
        step = self._steps[name]
        step.state = "done"
        step.completed_at = workflow.now()
        if step.open_flag_key:
            self._flags_to_resolve.append(step.open_flag_key)
            step.open_flag_key = None
        self._steps_done.append(name)
        await self._sync()

    async def _sync(self) -> None:
        """Write the run's state to OnboardingProgress (the console's copy)."""
        self._sequence += 1
        resolve, self._flags_to_resolve = self._flags_to_resolve, []
        step = self._steps.get(self._current) if self._current else None
        await self.execute_activity(
            activities.record_onboarding_progress,
            OnboardingProgressInput(
                practitioner_id=self._inp.practitioner_id,
                workflow_id=self._workflow_id,
                sequence=self._sequence,
                current_step=self._current or ("done" if self._status == "completed" else ""),
                status="in_progress" if self._status == "starting" else self._status,
                stalled=step is not None and step.state == "stalled",
                steps={name: s.as_dict() for name, s in self._steps.items()},
                resolve_flag_keys=resolve,
            ),
        )

    async def _record_queued_modules(self) -> None:
        # A module leaves the queue only once recorded, so a repeat signal arriving while
        # it is being recorded is still seen as a duplicate.
        while self._module_queue:
            module = self._module_queue[0]
            if module not in self._modules:
                self._module_queue.pop(0)
                self._ignore("training_module_completed", f"{module} is not an assigned module")
                continue
            completed_at = workflow.now()
            await self.execute_activity(
                shared_activities.record_module_completion,
                ModuleCompletionInput(self._inp.practitioner_id, module, completed_at.isoformat()),
            )
            self._modules_done.append(module)
            self._module_log.append({"module": module, "at": completed_at.isoformat()})
            self._module_queue.pop(0)

    def _training_waiting_for(self) -> str:
        missing = [m for m in self._modules if m not in self._modules_done]
        return f"training_module_completed signal for {', '.join(missing) or 'nothing'}"

    async def _start_child(
        self,
        run_fn: Any,
        arg: Any,
        *,
        workflow_id: str,
        entity_type: str,
        entity_id: str | int,
        abandon: bool,
        id_reuse_policy: WorkflowIDReusePolicy = policies.DEFAULT_ID_REUSE,
    ) -> None:
        """Start a related run; one already running under that business id is kept."""
        try:
            await workflow.start_child_workflow(
                run_fn,
                arg,
                id=workflow_id,
                id_reuse_policy=id_reuse_policy,
                search_attributes=self.child_search_attributes(entity_type, entity_id),
                parent_close_policy=(
                    workflow.ParentClosePolicy.ABANDON
                    if abandon
                    else workflow.ParentClosePolicy.TERMINATE
                ),
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("%s is already running; not started again", workflow_id)

    def _ignore(self, signal: str, reason: str) -> None:
        note_ignored(self._ignored, signal, reason)
