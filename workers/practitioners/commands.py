"""`flask trigger-practitioner-workflows`: start the practitioners workflows, and move an
onboarding (or a renewal) along from the command line with its signals and updates.

    flask trigger-practitioner-workflows onboarding 123
    flask trigger-practitioner-workflows renewal 789
    flask trigger-practitioner-workflows verification 123
    flask trigger-practitioner-workflows training 123 trauma-informed
    flask trigger-practitioner-workflows signal 123 profile_completed
    flask trigger-practitioner-workflows review-documents 123 --approve --notes "all good"
    flask trigger-practitioner-workflows background-check 123 --passed --reference BC-123-...
    flask trigger-practitioner-workflows module-completed 123 safety-101
    flask trigger-practitioner-workflows subscription 123 --tier pro
    flask trigger-practitioner-workflows service-configured 123 45
    flask trigger-practitioner-workflows extend 123 --step documents --days 3 --reason "..."
    flask trigger-practitioner-workflows reject 123 --reason "..."
    flask trigger-practitioner-workflows progress onboarding 123

Everything is checked before anything is sent: ids parse and exist, and signal/update
arguments go through `parse_input` (the console's parser) with the same messages.
The workflows' validators still have the last word on updates (e.g. extending a step
that is not the current one), and their refusals are shown as they are.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from estuary.contracts.inputs import (
    InputError,
    parse_id,
    parse_input,
    parse_kwargs,
    refuse_server_filled,
)
from estuary.contracts.practitioners import (
    BackgroundCheckResultSignal,
    CancelSubscriptionSignal,
    ExtendStepUpdate,
    OnboardingInput,
    RejectOnboardingUpdate,
    RetryNowUpdate,
    ReviewDocumentsUpdate,
    ServiceConfiguredSignal,
    SubscriptionRenewalInput,
    SubscriptionSelectedSignal,
    TrainingCertificationInput,
    TrainingModuleCompletedSignal,
    VerificationInput,
    WaiveChargeUpdate,
    onboarding_workflow_id,
    subscription_workflow_id,
    training_workflow_id,
    verification_workflow_id,
)
from estuary.contracts.specs.practitioners import ONBOARDING_SIGNALS
from estuary.db import db
from estuary.models import BackgroundCheck, Practitioner, Service, Subscription
from estuary.services import background_checks, onboarding, training
from estuary.services.command_audit import cli_actor, note_temporal_call
from estuary.services.errors import BusinessRuleError
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError
from workers.temporal.command_support import start_and_report

trigger_practitioner_workflows = AppGroup(
    "trigger-practitioner-workflows",
    help="Start practitioners workflows and send onboarding/renewal signals and updates.",
)


# --- checks ------------------------------------------------------------------------------


def _id(text: str, field: str) -> int:
    try:
        return parse_id(text)
    except ValueError as exc:
        raise click.ClickException(f"{field}: {exc}") from None


def _practitioner(text: str) -> Practitioner:
    pid = _id(text, "practitioner_id")
    practitioner = db.session.get(Practitioner, pid)
    if practitioner is None:
        raise click.ClickException(f"practitioner {pid} does not exist")
    return practitioner


def _subscription(text: str) -> Subscription:
    sid = _id(text, "subscription_id")
    sub = db.session.get(Subscription, sid)
    if sub is None:
        raise click.ClickException(f"subscription {sid} does not exist")
    return sub


def _parse(input_type: type, values: dict[str, Any]) -> Any:
    """Parse with the console's rules; `actor` is always this command line's user."""
    try:
        return parse_input(input_type, {**values, "actor": cli_actor()})
    except InputError as exc:
        raise click.ClickException(str(exc)) from None


def _show(value: Any) -> str:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return json.dumps(value, default=str, sort_keys=True)


@contextlib.contextmanager
def _reported(workflow_id: str) -> Iterator[None]:
    """A gateway refusal as the command's error message, naming the workflow."""
    try:
        yield
    except GatewayError as exc:
        raise click.ClickException(f"{workflow_id}: {exc.message}") from None


def _signal(workflow_id: str, name: str, arg: Any) -> None:
    note_temporal_call(f"workflow:{workflow_id}")
    with _reported(workflow_id):
        gateway().signal(workflow_id, name, arg)
    click.echo(f"Sent {name} to {workflow_id}")


def _update(workflow_id: str, name: str, arg: Any) -> None:
    note_temporal_call(f"workflow:{workflow_id}")
    with _reported(workflow_id):
        answer = gateway().update(workflow_id, name, arg)
    click.echo(f"{name} accepted by {workflow_id}: {_show(answer)}")


Send = Callable[[str, str, Any], None]


def _to_onboarding(
    practitioner_id: str, send: Send, name: str, input_type: type, values: dict[str, Any]
) -> None:
    """Look the practitioner up, parse the input, then signal or update their onboarding."""
    practitioner = _practitioner(practitioner_id)
    send(onboarding_workflow_id(practitioner.id), name, _parse(input_type, values))


def _to_renewal(
    subscription_id: str, send: Send, name: str, input_type: type, values: dict[str, Any]
) -> None:
    """Look the subscription up, parse the input, then signal or update its renewal run."""
    sub = _subscription(subscription_id)
    send(subscription_workflow_id(sub.id), name, _parse(input_type, values))


# --- starting ------------------------------------------------------------------------------


@trigger_practitioner_workflows.command("onboarding")
@click.argument("practitioner_id")
@click.option("--deadline-days", default=None, help="Days per step before it stalls (7)")
@click.option("--reminder-days", default=None, help="Reminder days after a step starts (2,5)")
@click.option("--reason", default="", help="Why (kept in the run's memo)")
@click.option("--wait", is_flag=True, help="Follow the run until it ends")
def onboarding_command(
    practitioner_id: str,
    deadline_days: str | None,
    reminder_days: str | None,
    reason: str,
    wait: bool,
) -> None:
    """Start PractitionerOnboardingWorkflow for a practitioner."""
    practitioner = _practitioner(practitioner_id)
    try:
        onboarding.check_can_onboard(practitioner)
    except BusinessRuleError as exc:
        raise click.ClickException(exc.message) from None
    values = {"practitioner_id": str(practitioner.id)}
    if deadline_days is not None:
        values["step_deadline_days"] = deadline_days
    if reminder_days is not None:
        values["reminder_days"] = reminder_days
    try:
        payload = parse_input(OnboardingInput, values)
    except InputError as exc:
        raise click.ClickException(f"invalid input: {exc}") from None
    start_and_report("PractitionerOnboardingWorkflow", payload, reason=reason, wait=wait)


@trigger_practitioner_workflows.command("renewal")
@click.argument("subscription_id")
@click.option("--dunning-retries", default=None, help="Daily retries after a decline (3)")
@click.option("--reason", default="")
@click.option("--wait", is_flag=True)
def renewal_command(
    subscription_id: str, dunning_retries: str | None, reason: str, wait: bool
) -> None:
    """Start SubscriptionRenewalWorkflow for a subscription."""
    sub = _subscription(subscription_id)
    if sub.status in ("expired", "cancelled"):
        raise click.ClickException(f"subscription {sub.id} is {sub.status}; nothing to renew")
    values = {"subscription_id": str(sub.id)}
    if dunning_retries is not None:
        values["dunning_retries"] = dunning_retries
    try:
        payload = parse_input(SubscriptionRenewalInput, values)
    except InputError as exc:
        raise click.ClickException(f"invalid input: {exc}") from None
    start_and_report("SubscriptionRenewalWorkflow", payload, reason=reason, wait=wait)


@trigger_practitioner_workflows.command("verification")
@click.argument("practitioner_id")
@click.option("--interval-days", default=None, help="Days between re-verifications (30)")
@click.option("--reason", default="")
def verification_command(practitioner_id: str, interval_days: str | None, reason: str) -> None:
    """Start PractitionerVerificationWorkflow for a practitioner."""
    practitioner = _practitioner(practitioner_id)
    values = {"practitioner_id": str(practitioner.id)}
    if interval_days is not None:
        values["check_interval_days"] = interval_days
    try:
        payload = parse_input(VerificationInput, values)
    except InputError as exc:
        raise click.ClickException(f"invalid input: {exc}") from None
    start_and_report("PractitionerVerificationWorkflow", payload, reason=reason)


@trigger_practitioner_workflows.command("training")
@click.argument("practitioner_id")
@click.argument("certification")
@click.option("--validity-days", default=None, help="Days a certificate is valid (365)")
@click.option("--reason", default="")
def training_command(
    practitioner_id: str, certification: str, validity_days: str | None, reason: str
) -> None:
    """Start TrainingCertificationWorkflow for a practitioner and a certification."""
    practitioner = _practitioner(practitioner_id)
    values = {"practitioner_id": str(practitioner.id), "certification": certification}
    if validity_days is not None:
        values["validity_days"] = validity_days
    try:
        payload = parse_input(TrainingCertificationInput, values)
    except InputError as exc:
        raise click.ClickException(f"invalid input: {exc}") from None
    if not training.required_modules(payload.certification):
        known = ", ".join(training.known_certifications()) or "none"
        raise click.ClickException(
            f"certification {payload.certification!r} has no required training modules "
            f"(known: {known})"
        )
    start_and_report("TrainingCertificationWorkflow", payload, reason=reason)


# --- onboarding signals and updates --------------------------------------------------------


@trigger_practitioner_workflows.command("signal")
@click.argument("practitioner_id")
@click.argument("name")
@click.option("--field", "fields", multiple=True, help="field=value of the signal (repeatable)")
def signal_command(practitioner_id: str, name: str, fields: tuple[str, ...]) -> None:
    """Send any onboarding signal by name (signal 123 profile_completed)."""
    practitioner = _practitioner(practitioner_id)
    arg_types = dict(ONBOARDING_SIGNALS)
    if name not in arg_types:
        raise click.ClickException(
            f"unknown onboarding signal {name!r} (signals: {', '.join(arg_types)})"
        )
    try:
        values = parse_kwargs(list(fields))
        refuse_server_filled(arg_types[name], values)
    except InputError as exc:
        raise click.ClickException(str(exc)) from None
    _signal(onboarding_workflow_id(practitioner.id), name, _parse(arg_types[name], values))


@trigger_practitioner_workflows.command("review-documents")
@click.argument("practitioner_id")
@click.option("--approve/--reject", "approved", required=True, help="Approve, or ask again")
@click.option("--notes", default="", help="What is wrong (required with --reject)")
def review_documents_command(practitioner_id: str, approved: bool, notes: str) -> None:
    """Record the ops review of the submitted documents (update review_documents)."""
    values = {"approved": "yes" if approved else "no", "notes": notes}
    _to_onboarding(practitioner_id, _update, "review_documents", ReviewDocumentsUpdate, values)


@trigger_practitioner_workflows.command("background-check")
@click.argument("practitioner_id")
@click.option("--passed/--failed", "passed", required=True)
@click.option("--reference", default=None, help="The check's reference (default: pending one)")
def background_check_command(practitioner_id: str, passed: bool, reference: str | None) -> None:
    """Record a background-check result (signal background_check_result)."""
    practitioner = _practitioner(practitioner_id)
    pending = background_checks.pending_check(practitioner.id)
    if reference is None:
        if pending is None:
            raise click.ClickException(
                f"practitioner {practitioner.id} has no pending background check"
            )
        reference = pending.reference
    else:
        check = db.session.scalar(
            select(BackgroundCheck).where(BackgroundCheck.reference == reference.strip())
        )
        if check is None or check.practitioner_id != practitioner.id:
            raise click.ClickException(
                f"reference: no background check {reference!r} for practitioner {practitioner.id}"
            )
        if check.status != "pending":
            raise click.ClickException(
                f"reference: background check {check.reference} is already {check.status}"
            )
    arg = _parse(
        BackgroundCheckResultSignal,
        {"passed": "yes" if passed else "no", "reference": reference},
    )
    _signal(onboarding_workflow_id(practitioner.id), "background_check_result", arg)


@trigger_practitioner_workflows.command("module-completed")
@click.argument("practitioner_id")
@click.argument("module")
@click.option(
    "--certification",
    default=None,
    help="Send to that certification's training run instead of the onboarding",
)
def module_completed_command(practitioner_id: str, module: str, certification: str | None) -> None:
    """Record a completed training module (signal training_module_completed)."""
    practitioner = _practitioner(practitioner_id)
    arg = _parse(TrainingModuleCompletedSignal, {"module": module})
    found = training.get_module(arg.module)
    if found is None:
        raise click.ClickException(f"module: training module {arg.module!r} does not exist")
    if certification is None:
        target = onboarding_workflow_id(practitioner.id)
    else:
        if found.certification != certification:
            raise click.ClickException(
                f"module: {arg.module} belongs to {found.certification!r}, not {certification!r}"
            )
        target = training_workflow_id(practitioner.id, certification)
    _signal(target, "training_module_completed", arg)


@trigger_practitioner_workflows.command("subscription")
@click.argument("practitioner_id")
@click.option("--tier", required=True, help="basic, pro or premium")
def subscription_command(practitioner_id: str, tier: str) -> None:
    """Select the subscription tier (signal subscription_selected)."""
    values = {"tier": tier}
    _to_onboarding(
        practitioner_id, _signal, "subscription_selected", SubscriptionSelectedSignal, values
    )


@trigger_practitioner_workflows.command("service-configured")
@click.argument("practitioner_id")
@click.argument("service_id")
def service_configured_command(practitioner_id: str, service_id: str) -> None:
    """Report a configured service (signal service_configured)."""
    practitioner = _practitioner(practitioner_id)
    arg = _parse(ServiceConfiguredSignal, {"service_id": service_id})
    service = db.session.get(Service, arg.service_id)
    if service is None or service.practitioner_id != practitioner.id:
        raise click.ClickException(
            f"service_id: service {arg.service_id} does not exist for practitioner "
            f"{practitioner.id}"
        )
    _signal(onboarding_workflow_id(practitioner.id), "service_configured", arg)


@trigger_practitioner_workflows.command("extend")
@click.argument("practitioner_id")
@click.option("--step", required=True, help="The current (stalled) step")
@click.option("--days", required=True, help="Days to add (1-90)")
@click.option("--reason", required=True)
def extend_command(practitioner_id: str, step: str, days: str, reason: str) -> None:
    """Extend the current step's deadline (update extend)."""
    values = {"step": step, "days": days, "reason": reason}
    _to_onboarding(practitioner_id, _update, "extend", ExtendStepUpdate, values)


@trigger_practitioner_workflows.command("reject")
@click.argument("practitioner_id")
@click.option("--reason", required=True)
def reject_command(practitioner_id: str, reason: str) -> None:
    """Reject the onboarding (update reject)."""
    _to_onboarding(practitioner_id, _update, "reject", RejectOnboardingUpdate, {"reason": reason})


# --- renewal ops ---------------------------------------------------------------------------


@trigger_practitioner_workflows.command("retry-renewal")
@click.argument("subscription_id")
@click.option("--note", default="")
def retry_renewal_command(subscription_id: str, note: str) -> None:
    """Retry a declined renewal charge now (update retry_now)."""
    _to_renewal(subscription_id, _update, "retry_now", RetryNowUpdate, {"note": note})


@trigger_practitioner_workflows.command("waive-renewal")
@click.argument("subscription_id")
@click.option("--reason", required=True)
def waive_renewal_command(subscription_id: str, reason: str) -> None:
    """Grant the period without payment (update waive)."""
    _to_renewal(subscription_id, _update, "waive", WaiveChargeUpdate, {"reason": reason})


@trigger_practitioner_workflows.command("cancel-subscription")
@click.argument("subscription_id")
@click.option("--reason", default="")
def cancel_subscription_command(subscription_id: str, reason: str) -> None:
    """Cancel a subscription at its period end (signal cancel)."""
    _to_renewal(subscription_id, _signal, "cancel", CancelSubscriptionSignal, {"reason": reason})


# --- reading -------------------------------------------------------------------------------

PROGRESS_KINDS = ("onboarding", "renewal", "verification", "training")


@trigger_practitioner_workflows.command("progress")
@click.argument("kind", type=click.Choice(PROGRESS_KINDS))
@click.argument("entity_id")
@click.argument("certification", required=False)
def progress_command(kind: str, entity_id: str, certification: str | None) -> None:
    """Print a run's `progress` (renewal takes a subscription id, training a certification)."""
    if kind == "renewal":
        workflow_id = subscription_workflow_id(_subscription(entity_id).id)
    else:
        pid = _practitioner(entity_id).id
        if kind == "onboarding":
            workflow_id = onboarding_workflow_id(pid)
        elif kind == "verification":
            workflow_id = verification_workflow_id(pid)
        else:
            if not certification:
                raise click.ClickException("certification: required for training")
            workflow_id = training_workflow_id(pid, certification)
    with _reported(workflow_id):
        progress = gateway().query(workflow_id, "progress")
    click.echo(json.dumps(progress, indent=2, sort_keys=True, default=str))


COMMANDS = [trigger_practitioner_workflows]
