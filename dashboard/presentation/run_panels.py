"""The action panels pages show: which forms and buttons the signed-in user may use on a
run (`runs/_actions.html`) and on an entity's runs (`domains/_*_actions.html`). They are
template globals, registered by `register_template_globals(app)`; the actions themselves
are `dashboard.run_actions`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from flask import Flask, g, request
from flask_login import current_user
from sqlalchemy import select

from dashboard.domain_pages import START_FIRST, fitting_starts, start_label
from dashboard.permissions import can
from dashboard.run_actions.control import workflow_for_run
from dashboard.run_actions.handler_forms import (
    PAYOUT_DECISIONS,
    ActionForm,
    action_form,
    console_handlers,
    handlers_now,
)
from dashboard.run_actions.pickers import empty_reason, has_choices
from dashboard.run_actions.start_first import entity_business_id
from dashboard.writes import REASON_CODE_KEY, REASON_TEXT_KEY, link, run_url
from estuary.contracts import catalogue
from estuary.contracts.approval_rules import reason_codes_for
from estuary.contracts.catalogue import RegisteredWorkflow
from estuary.db import db
from estuary.models import Payout, Subscription
from temporal_gateway.access import gateway
from temporal_gateway.gateway import (
    CLOSED_FAILED_STATUSES,
    GatewayError,
    RunInfo,
    RunNotFound,
    TemporalUnavailable,
)


@dataclass
class RunActions:
    run: RunInfo
    registered: RegisteredWorkflow | None
    forms: list[ActionForm]
    money: bool
    next: str
    payout_id: int | None = None
    can_cancel: bool = False
    can_terminate: bool = False
    can_reset: bool = False
    can_retry: bool = False
    # Actions that apply now but whose pickers have nothing to offer (said, not hidden).
    empty_pickers: list[str] = dataclasses.field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(
            self.forms
            or self.can_cancel
            or self.can_terminate
            or self.can_reset
            or self.can_retry
            or self.payout_id
        )


def _current_path(run: RunInfo) -> str:
    """Where an action on this run goes back to: this page, or the run's page when
    the panel is drawn by the run page's live refresh."""
    if request.endpoint == "runs.detail_live":
        return run_url(run.workflow_id, run.run_id) or request.path
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def run_actions(
    run: RunInfo, registered: RegisteredWorkflow | None = None, progress: Any = None
) -> RunActions:
    """The forms the signed-in user may use on this run now (for runs/_actions.html):
    only while it runs, only the handlers its `progress` says apply (for a workflow whose
    spec has `actions_now`), with pickers filled from that progress. Built from what the
    page (or its live refresh) already read: no Temporal call of its own."""
    wf = registered or workflow_for_run(run)
    money = bool(wf and wf.spec.money)
    next_url = _current_path(run)
    action_forms: list[ActionForm] = []
    empty: list[str] = []
    payout_id = None
    if wf is not None and run.is_running:
        for kind in ("signal", "update"):
            for name in handlers_now(wf, kind, progress):
                if wf.spec.money and name in PAYOUT_DECISIONS:
                    continue
                form = action_form(
                    wf, kind, name, run.workflow_id, next_url=next_url, progress=progress
                )
                if not can(current_user, form.permission):
                    continue
                if has_choices(form.fields):
                    action_forms.append(form)
                else:  # e.g. no active service of the practitioner left to configure
                    empty.append(f"{form.title}: {empty_reason(wf.name, name, form.fields)}.")
    if money and run.is_running:
        payout_id = db.session.scalar(
            select(Payout.id).where(
                Payout.workflow_id == run.workflow_id, Payout.status == "pending_approval"
            )
        )
    closed_failed = run.status in CLOSED_FAILED_STATUSES
    return RunActions(
        run=run,
        registered=wf,
        forms=action_forms,
        empty_pickers=empty,
        money=money,
        next=next_url,
        payout_id=payout_id,
        can_cancel=run.is_running and can(current_user, "cancel"),
        can_terminate=run.is_running and can(current_user, "terminate"),
        can_reset=can(current_user, "reset") and run.status not in ("ContinuedAsNew",),
        can_retry=closed_failed and wf is not None and can(current_user, "retry"),
    )


@dataclass
class EntityActions:
    entity_type: str
    entity_id: int
    runs: list[RunActions]
    starts: list[tuple[str, str]]  # (label, url) of start forms prefilled for the entity
    error: str = ""
    # Forms of a workflow the entity has no run of yet: sending one starts the run first
    # (a booking with no lifecycle can still be cancelled or rescheduled).
    start_first: list[ActionForm] = dataclasses.field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.runs or self.starts or self.error or self.start_first)


def _start_first_forms(
    wf: RegisteredWorkflow, workflow_id: str, entity_id: int
) -> list[ActionForm]:
    """The updates of `wf` as forms that start the entity's run first."""
    if not can(current_user, "start_workflow"):
        return []
    out = []
    for name in console_handlers(wf, "update"):
        if wf.spec.money and name in PAYOUT_DECISIONS:
            continue
        form = action_form(
            wf, "update", name, workflow_id, next_url=request.path, start_entity=entity_id
        )
        if can(current_user, form.permission):
            out.append(form)
    return out


def entity_actions(
    entity_type: str, entity_id: int, max_runs: int = 6, state: str | None = None
) -> EntityActions:
    """Forms for the runs of one entity (booking, practitioner, subscription, payout),
    and the workflows to start that fit its `state` (`domain_pages.STARTS_BY_STATE`;
    every one when no state is given)."""
    out = EntityActions(entity_type, int(entity_id), [], [])
    fits = fitting_starts(entity_type, state)
    candidates: list[tuple[RegisteredWorkflow, str]] = []
    for wf in catalogue.all_workflows():
        if wf.spec.entity_type != entity_type:
            continue
        wid = entity_business_id(wf, entity_type, int(entity_id))
        if wid and (wf.spec.signals or wf.spec.updates):
            candidates.append((wf, wid))
        elif fits is None or wf.name in fits:
            _offer_start(out, wf)
    for wf, wid in candidates[:max_runs]:
        if g.get("temporal_unreachable"):
            # Found unreachable earlier in this request: wait for the timeout once only.
            out.error = str(g.temporal_unreachable)
            break
        try:
            info = gateway().describe(wid)
        except RunNotFound:
            info = None
        except TemporalUnavailable as exc:
            g.temporal_unreachable = exc.message
            out.error = exc.message
            break
        except GatewayError as exc:
            out.error = exc.message
            continue
        if info is not None and (info.is_running or info.status in CLOSED_FAILED_STATUSES):
            out.runs.append(run_actions(info, wf, _progress(wf, info)))
        elif fits is not None and wf.name in fits:
            # No run to act on, and the entity's state calls for one.
            if wf.name in START_FIRST and info is None:
                out.start_first.extend(_start_first_forms(wf, wid, int(entity_id)))
            else:
                _offer_start(out, wf)
    return out


def _offer_start(out: EntityActions, wf: RegisteredWorkflow) -> None:
    if not can(current_user, "start_workflow"):
        return
    url = link("catalog.start", name=wf.name, **{f"{out.entity_type}_id": out.entity_id})
    if url:
        out.starts.append((start_label(wf.name), url))


def _progress(wf: RegisteredWorkflow, info: RunInfo) -> Any:
    """The run's progress when its actions depend on it (one short query), else None."""
    if wf.spec.actions_now is None or not info.is_running:
        return None
    try:
        return gateway().query(info.workflow_id, "progress", info.run_id, timeout_seconds=2)
    except GatewayError:
        return None


def payout_run_actions(payout: Any) -> RunActions | None:
    """The actions on a payout's workflow run (cancel, retry...), or None."""
    if not getattr(payout, "workflow_id", None) or g.get("temporal_unreachable"):
        return None
    try:
        info = gateway().describe(payout.workflow_id)
    except TemporalUnavailable as exc:
        g.temporal_unreachable = exc.message
        return None
    except GatewayError:
        return None
    return run_actions(info)


def practitioner_actions(practitioner: Any) -> list[EntityActions]:
    """The practitioner's own runs (and what fits their status to start) plus the
    renewal runs of their latest subscriptions."""
    out = [entity_actions("practitioner", practitioner.id, state=practitioner.status)]
    subscription_ids = db.session.scalars(
        select(Subscription.id)
        .where(Subscription.practitioner_id == practitioner.id)
        .order_by(Subscription.id.desc())
        .limit(3)
    )
    for sid in subscription_ids:
        out.append(entity_actions("subscription", sid))
    return out


def register_template_globals(app: Flask) -> None:
    """The panels and the reason fields, as the templates call them."""
    app.add_template_global(run_actions, "run_actions")
    app.add_template_global(entity_actions, "entity_actions")
    app.add_template_global(payout_run_actions, "payout_run_actions")
    app.add_template_global(practitioner_actions, "practitioner_actions")
    app.add_template_global(run_url, "run_link")
    app.add_template_global(reason_codes_for, "reason_codes")
    app.add_template_global(lambda: (REASON_CODE_KEY, REASON_TEXT_KEY), "reason_label_keys")
