"""Temporal Schedules defined in code (`workers/<domain>/schedules.py: SCHEDULES`) and
`flask schedules sync|list`, which creates or updates them on the server."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from dashboard.gateway import gateway
from dashboard.temporal import GatewayError
from workers.temporal import registry
from workers.temporal.search_attributes import run_attributes


@dataclass(frozen=True)
class ScheduleDefinition:
    schedule_id: str
    workflow_name: str
    # Builds the input each time a schedule is synced (not each time it fires).
    make_input: Any
    cron: str  # UTC cron expression
    description: str
    # Workflow id prefix; Temporal appends the fire time, so each firing is distinct.
    workflow_id_prefix: str


def definitions() -> list[ScheduleDefinition]:
    found: list[ScheduleDefinition] = []
    for name in registry.domains():
        try:
            module = importlib.import_module(f"workers.{name}.schedules")
        except ModuleNotFoundError as exc:
            if exc.name == f"workers.{name}.schedules":
                continue
            raise
        found.extend(getattr(module, "SCHEDULES", []))
    return found


def _schedule(defn: ScheduleDefinition, prefix: str) -> Schedule:
    wf = registry.workflow(defn.workflow_name)
    payload = defn.make_input()
    return Schedule(
        action=ScheduleActionStartWorkflow(
            defn.workflow_name,
            payload,
            id=defn.workflow_id_prefix,
            task_queue=f"{prefix}{wf.domain}",
            typed_search_attributes=run_attributes(
                wf.domain, wf.spec.entity_type, wf.spec.entity_id(payload), "schedule"
            ),
            memo={"triggered_by": "schedule", "reason": defn.description},
        ),
        spec=ScheduleSpec(cron_expressions=[defn.cron]),
    )


def sync_schedules() -> list[str]:
    """Create missing schedules and update existing ones to match the code."""
    prefix = current_app.config.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
    defs = definitions()

    async def call(client: Client) -> list[str]:
        done: list[str] = []
        for defn in defs:
            schedule = _schedule(defn, prefix)
            try:
                await client.create_schedule(defn.schedule_id, schedule)
                done.append(f"created {defn.schedule_id}")
            except ScheduleAlreadyRunningError:

                def replace(_: ScheduleUpdateInput, s: Schedule = schedule) -> ScheduleUpdate:
                    return ScheduleUpdate(schedule=s)

                await client.get_schedule_handle(defn.schedule_id).update(replace)
                done.append(f"updated {defn.schedule_id}")
        return done

    return gateway().run(call, timeout=30)


schedules_cli = AppGroup("schedules", help="Temporal Schedules defined in code.")


@schedules_cli.command("sync")
def sync_command() -> None:
    """Create or update every schedule defined in workers/<domain>/schedules.py."""
    try:
        for line in sync_schedules():
            click.echo(line)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


@schedules_cli.command("list")
def list_command() -> None:
    """Show the schedules defined in code and their next run on the server."""

    async def call(client: Client) -> list[str]:
        lines = []
        for defn in definitions():
            try:
                desc = await client.get_schedule_handle(defn.schedule_id).describe()
                nxt = desc.info.next_action_times[:1]
                state = "paused" if desc.schedule.state.paused else "active"
                when = nxt[0].astimezone(UTC).isoformat() if nxt else "-"
                lines.append(f"{defn.schedule_id}: {state}, next {when} ({defn.cron})")
            except Exception:  # not created yet
                lines.append(f"{defn.schedule_id}: not on the server (run `flask schedules sync`)")
        return lines

    try:
        for line in gateway().run(call, timeout=30):
            click.echo(line)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
