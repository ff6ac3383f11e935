"""ProgressivePackagePayoutWorkflow: a package's earnings released one exact part per session.

Deterministic code only: the workflow sandbox re-imports this module for every new run, so it
holds one workflow (or a small family) and imports only modules passed through the sandbox
(workers.temporal.worker.WORKFLOW_PASSTHROUGH_MODULES) besides its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from estuary.contracts import policies
from estuary.contracts.payments import (
    LoadPackageInput,
    PackagePayoutInput,
    PackagePayoutResult,
    PackageReleaseResult,
    PackageState,
    ReleasePackageSessionInput,
    SessionCompletedSignal,
    SettleExpiredPackageInput,
)
from workers.payments.workflow_support import refuse_bad_input
from workers.temporal.base_workflows import BaseWorkflow

with workflow.unsafe.imports_passed_through():
    import workers.payments.activities as activities


@workflow.defn
class ProgressivePackagePayoutWorkflow(BaseWorkflow):
    """One run per package purchase.

    `session_completed(booking_id)` queues a booking once (repeats are ignored here, and
    the release activity is idempotent per booking besides). Each queued booking releases
    the next exact part of the net total (part k = net // n, the last part takes the
    remainder), so the parts sum to the net total whatever order sessions complete in.
    At `expires_at` the expiry policy settles what is left.
    """

    @workflow.init
    def __init__(self, inp: PackagePayoutInput) -> None:
        self._inp = inp
        self._stage = "loading package"
        self._steps_done: list[str] = []
        self._queue: list[int] = []
        self._seen: set[int] = set()
        self._duplicates = 0
        self._ignored: list[int] = []
        self._state: PackageState | None = None
        self._sessions_released = 0
        self._released_cents = 0
        self._expires_at: datetime | None = None
        self._waiting_for: str | None = None

    @workflow.signal
    def session_completed(self, signal: SessionCompletedSignal) -> None:
        booking_id = signal.booking_id
        if not isinstance(booking_id, int) or isinstance(booking_id, bool) or booking_id < 1:
            workflow.logger.warning("session_completed with a bad booking id %r", booking_id)
            return
        if booking_id in self._seen:
            self._duplicates += 1
            return
        self._seen.add(booking_id)
        self._queue.append(booking_id)

    @workflow.query
    def progress(self) -> dict:
        state = self._state
        total = state.sessions_total if state else None
        net = state.net_cents if state else None
        return {
            "stage": self._stage,
            "steps_done": list(self._steps_done[-50:]),
            "waiting_for": self._waiting_for,
            "waiting_until": self._expires_at.isoformat() if self._expires_at else None,
            "sessions_done": self._sessions_released,
            "sessions_total": total,
            "released_cents": self._released_cents,
            "remaining_cents": (net - self._released_cents) if net is not None else None,
            "net_cents": net,
            "queued_booking_ids": list(self._queue),
            "duplicates_ignored": self._duplicates,
            "ignored_booking_ids": list(self._ignored),
            "expiry_policy": self._inp.expiry_policy,
        }

    @workflow.run
    async def run(self, inp: PackagePayoutInput) -> PackagePayoutResult:
        refuse_bad_input(inp)
        state: PackageState = await self.execute_activity(
            activities.load_package_state,
            LoadPackageInput(inp.package_purchase_id),
            policy=policies.DATABASE,
        )
        self._state = state
        self._released_cents = state.released_cents
        self._sessions_released = len(state.released_booking_ids)
        self._expires_at = datetime.fromisoformat(state.expires_at)
        already = set(state.released_booking_ids)
        self._seen |= already
        self._queue = [b for b in self._queue if b not in already]
        self._steps_done.append("loaded package")
        if state.expiry_settled or self._sessions_released >= state.sessions_total:
            self._stage = "already settled"
            return self._result(state, "already_settled")

        while self._sessions_released < state.sessions_total:
            if self._queue:
                await self._release(self._queue.pop(0))
                continue
            left = self._expires_at - workflow.now()
            if left <= timedelta(0):
                break
            self._stage = "waiting for sessions"
            self._waiting_for = (
                f"session_completed ({self._sessions_released} of {state.sessions_total} done)"
            )
            try:
                await workflow.wait_condition(lambda: bool(self._queue), timeout=left)
            except TimeoutError:
                break
            finally:
                self._waiting_for = None

        outcome = "completed"
        settlement = 0
        if self._sessions_released < state.sessions_total:
            self._stage = "settling expiry"
            expiry = await self.execute_activity(
                activities.settle_expired_package,
                SettleExpiredPackageInput(
                    inp.package_purchase_id, inp.expiry_policy, workflow.info().workflow_id
                ),
                policy=policies.DATABASE,
            )
            settlement = expiry.amount_cents
            outcome = "expired"
            self._steps_done.append(f"expired: {expiry.outcome} ({expiry.amount_cents} cents)")
        self._stage = "done"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result(state, outcome, settlement)

    async def _release(self, booking_id: int) -> None:
        assert self._state is not None
        self._stage = f"releasing booking {booking_id}"
        result: PackageReleaseResult = await self.execute_activity(
            activities.release_package_session,
            ReleasePackageSessionInput(
                self._state.package_purchase_id,
                booking_id,
                workflow.info().workflow_id,
                workflow.now().isoformat(),
            ),
            policy=policies.DATABASE,
        )
        if result.released:
            self._sessions_released = result.sessions_released
            self._released_cents = result.released_cents_total
            self._steps_done.append(
                f"released part {result.part} ({result.amount_cents} cents, booking {booking_id})"
            )
        else:
            self._ignored.append(booking_id)
            self._steps_done.append(f"ignored booking {booking_id}: {result.ignored_reason}")

    def _result(
        self, state: PackageState, outcome: str, settlement: int = 0
    ) -> PackagePayoutResult:
        return PackagePayoutResult(
            package_purchase_id=state.package_purchase_id,
            outcome=outcome,
            sessions_total=state.sessions_total,
            sessions_released=self._sessions_released,
            net_cents=state.net_cents,
            released_cents=self._released_cents,
            remaining_cents=state.net_cents - self._released_cents,
            expiry_policy=self._inp.expiry_policy,
            expiry_settlement_cents=settlement,
            ignored_booking_ids=list(self._ignored),
        )
