"""Temporal Schedules defined in code (the catalogue's: `estuary.contracts.specs.<domain>`,
`SCHEDULES`) and `flask schedules sync|list`, which creates or updates them on the server."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from flask import current_app
from flask.cli import AppGroup
from temporalio.api.workflowservice.v1 import DescribeScheduleRequest, UpdateScheduleRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode

from estuary.contracts import catalogue, policies
from estuary.contracts.catalogue import ScheduleDefinition
from estuary.contracts.search_attributes import run_attributes
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError

# How often an update is retried when someone changed the schedule between our describe
# and our update (the server refuses a stale conflict token).
UPDATE_ATTEMPTS = 3


class ScheduleConfigError(ValueError):
    """A schedule setting that cannot be used; nothing is synced."""


def definitions() -> list[ScheduleDefinition]:
    """Every schedule defined in code (`estuary.contracts.specs.<domain>: SCHEDULES`)."""
    return catalogue.schedules()


def time_zones(
    defs: list[ScheduleDefinition], default: str, overrides: Mapping[str, str]
) -> dict[str, str]:
    """Each schedule's time zone: the override for its id, else its own, else the default.

    Every name is checked against the zone database, and every override must name a
    defined schedule, so a typo is refused instead of silently running at UTC.
    """
    known = {d.schedule_id for d in defs}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ScheduleConfigError(
            f"SCHEDULE_TIME_ZONES names no schedule defined in code: {', '.join(unknown)} "
            f"(defined: {', '.join(sorted(known))})"
        )
    out: dict[str, str] = {}
    for d in defs:
        name = overrides.get(d.schedule_id) or d.time_zone or default
        source = (
            "SCHEDULE_TIME_ZONES"
            if d.schedule_id in overrides
            else ("its definition" if d.time_zone else "SCHEDULE_TIME_ZONE")
        )
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleConfigError(
                f"time zone {name!r} for {d.schedule_id} (from {source}) is not an IANA "
                "zone name such as UTC or Europe/London"
            ) from None
        out[d.schedule_id] = name
    return out


def configured_time_zones(defs: list[ScheduleDefinition]) -> dict[str, str]:
    config = current_app.config
    return time_zones(
        defs, config.get("SCHEDULE_TIME_ZONE", "UTC"), config.get("SCHEDULE_TIME_ZONES", {})
    )


def desired_schedule(defn: ScheduleDefinition, prefix: str, time_zone: str) -> Schedule:
    """The parts of the schedule the code owns: its action, spec and policy (the state,
    paused or not and why, is the operators')."""
    wf = catalogue.workflow(defn.workflow_name)
    payload = defn.make_input()
    return Schedule(
        action=ScheduleActionStartWorkflow(
            defn.workflow_name,
            payload,
            id=defn.workflow_id_prefix,
            task_queue=catalogue.task_queue(wf.domain, prefix),
            typed_search_attributes=run_attributes(
                wf.domain, wf.spec.entity_type, wf.spec.entity_id(payload), "schedule"
            ),
            memo={"triggered_by": "schedule", "reason": defn.description},
        ),
        spec=ScheduleSpec(cron_expressions=[defn.cron], time_zone_name=time_zone),
        policy=SchedulePolicy(
            overlap=policies.SCHEDULE_OVERLAP, catchup_window=policies.SCHEDULE_CATCHUP_WINDOW
        ),
    )


async def _update_owned_parts(client: Client, schedule_id: str, desired: Schedule) -> tuple:
    """Replace action, spec and policies of a schedule on the server, keeping its state.

    The SDK's `ScheduleHandle.update` sends no conflict token, so a pause made between its
    describe and its update would be overwritten. Here the state is copied from the
    describe we answer, and the conflict token makes the server refuse the update if the
    schedule changed in between; then we read it again. Returns (paused, note).
    """
    timeout = gateway().rpc_timeout()
    # `_to_proto` is the SDK's own encoder of a Schedule (action payloads through the
    # client's data converter); the public update path calls it the same way.
    desired_proto = await desired._to_proto(client)
    for attempt in range(1, UPDATE_ATTEMPTS + 1):
        current = await client.workflow_service.describe_schedule(
            DescribeScheduleRequest(namespace=client.namespace, schedule_id=schedule_id),
            retry=True,
            timeout=timeout,
        )
        proto = type(desired_proto)()
        proto.CopyFrom(desired_proto)
        proto.state.CopyFrom(current.schedule.state)
        try:
            await client.workflow_service.update_schedule(
                UpdateScheduleRequest(
                    namespace=client.namespace,
                    schedule_id=schedule_id,
                    schedule=proto,
                    conflict_token=current.conflict_token,
                    identity=client.identity,
                ),
                retry=True,
                timeout=timeout,
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.FAILED_PRECONDITION or attempt == UPDATE_ATTEMPTS:
                raise
            continue
        return current.schedule.state.paused, current.schedule.state.notes
    raise AssertionError("unreachable")  # the loop returns or raises


def sync_schedules() -> list[str]:
    """Create missing schedules; on existing ones update only what the code owns."""
    prefix = current_app.config.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
    defs = definitions()
    zones = configured_time_zones(defs)
    desired = {d.schedule_id: desired_schedule(d, prefix, zones[d.schedule_id]) for d in defs}

    async def call(client: Client) -> list[str]:
        done: list[str] = []
        for defn in defs:
            sid, schedule = defn.schedule_id, desired[defn.schedule_id]
            where = f"{defn.cron} {zones[sid]}"
            try:
                await client.create_schedule(sid, schedule, rpc_timeout=gateway().rpc_timeout())
                done.append(f"created {sid} ({where})")
                continue
            except ScheduleAlreadyRunningError:
                pass
            paused, note = await _update_owned_parts(client, sid, schedule)
            kept = f"; still paused: {note or 'no note'}" if paused else ""
            done.append(f"updated {sid} ({where}{kept})")
        return done

    return gateway().run(call, timeout=30)


schedules_cli = AppGroup("schedules", help="Temporal Schedules defined in code.")


@schedules_cli.command("sync")
def sync_command() -> None:
    """Create or update every schedule defined in workers/<domain>/schedules.py."""
    try:
        for line in sync_schedules():
            click.echo(line)
    except ScheduleConfigError as exc:
        raise click.ClickException(f"nothing synced: {exc}") from None
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


@schedules_cli.command("list")
def list_command() -> None:
    """Show the schedules defined in code and their next run on the server."""
    defs = definitions()
    try:
        zones = configured_time_zones(defs)
    except ScheduleConfigError as exc:
        raise click.ClickException(str(exc)) from None

    async def call(client: Client) -> list[str]:
        lines = []
        for defn in defs:
            try:
                desc = await client.get_schedule_handle(defn.schedule_id).describe(
                    rpc_timeout=gateway().rpc_timeout()
                )
                nxt = desc.info.next_action_times[:1]
                state = "paused" if desc.schedule.state.paused else "active"
                when = nxt[0].astimezone(UTC).isoformat() if nxt else "-"
                lines.append(
                    f"{defn.schedule_id}: {state}, next {when} "
                    f"({defn.cron} {zones[defn.schedule_id]})"
                )
            except Exception:  # not created yet
                lines.append(f"{defn.schedule_id}: not on the server (run `flask schedules sync`)")
        return lines

    try:
        for line in gateway().run(call, timeout=30):
            click.echo(line)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
