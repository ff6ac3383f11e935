"""The `flask` commands of the guide: start-worker, start-all-workers, list-workflows,
trigger-workflows, plus seed-demo, users and every domain's own trigger command.

Each command is a plain function with a thin click wrapper (flaskr style).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from dashboard.extensions import db
from dashboard.forms import missing_references
from dashboard.gateway import gateway
from dashboard.services import audit
from dashboard.temporal import GatewayError, StartedRun, run_ui_url
from workers.temporal import registry
from workers.temporal.inputs import (
    SERVER_FILLED,
    InputError,
    parse_input,
    parse_kwargs,
    positional_values,
    refuse_server_filled,
)


def cli_actor() -> str:
    """Who runs this command: `user@host` (the requester of what it starts, the actor of
    what it sends, and the actor of its audit event)."""
    return audit.cli_actor()


# --- every state-changing command is audited -------------------------------------------
#
# One mechanism: `audit_commands` wraps the callback of every command below app.cli that
# is not read-only, so a new command is audited without remembering to. Each invocation
# writes one event like a console action: actor user@host, role and client "cli", the
# command's arguments as parameters (redacted and bounded by the audit writer), the
# workflow it reached as target, outcome success / invalid (refused before anything was
# sent) / error (Temporal or something else failed).

# Commands that change nothing (run paths as typed after `flask`).
READ_ONLY_COMMANDS = frozenset(
    {
        "list-workflows",
        "start-worker",
        "start-all-workers",
        "ledger check",
        "audit verify",
        "schedules list",
        "trigger-booking-workflows progress",
        "trigger-practitioner-workflows progress",
    }
)
# Groups owned by extensions (flask-migrate's `db`): their commands are not ours.
FOREIGN_GROUPS = frozenset({"db"})


@dataclass
class _CommandTrail:
    targets: list[str] = dataclasses.field(default_factory=list)
    sent: bool = False


_trail: contextvars.ContextVar[_CommandTrail | None] = contextvars.ContextVar(
    "cli_trail", default=None
)


def note_target(target: str, *, sent: bool = False) -> None:
    """Name what the running command acts on (the audit event's target); `sent` marks
    that something left for Temporal, so a later failure is an "error", not "invalid"."""
    trail = _trail.get()
    if trail is not None:
        trail.sent = trail.sent or sent
        if target not in trail.targets:
            trail.targets.append(target)


def note_temporal_call(target: str) -> None:
    """Called just before a command sends something to Temporal."""
    note_target(target, sent=True)


def _audited(path: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    @with_appcontext
    def run(*args: Any, **kwargs: Any) -> Any:
        trail = _CommandTrail()
        token = _trail.set(trail)
        params = {"command": path, **{k: _param(v) for k, v in kwargs.items()}}
        reason = str(kwargs.get("reason") or "")

        def write(outcome: str, detail: str = "") -> None:
            if outcome != "success":
                db.session.rollback()  # a failed command's half-done work is not kept
            # on success the event commits together with anything the command left open
            audit.record(
                action=f"cli.{path.replace(' ', '.')}"[:80],
                target=", ".join(trail.targets)[:300] or f"command:{path}",
                outcome=outcome,
                params=params,
                reason=reason,
                detail=detail,
            )

        try:
            result = callback(*args, **kwargs)
        except click.ClickException as exc:
            write("error" if trail.sent else "invalid", exc.format_message())
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            code = getattr(exc, "code", 1)
            if code not in (0, None):
                write("error", f"stopped ({type(exc).__name__} {code})")
            else:
                write("success")
            raise
        except Exception as exc:
            write("error", f"{type(exc).__name__}: {exc}")
            raise
        else:
            write("success")
            return result
        finally:
            _trail.reset(token)

    run.__estuary_audited__ = True  # type: ignore[attr-defined]
    return run


def _param(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [str(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def audit_commands(group: click.Group, prefix: str = "") -> None:
    """Wrap every state-changing command under `group` (once: commands are module-level
    objects shared by every app the process creates)."""
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if path in READ_ONLY_COMMANDS or path in FOREIGN_GROUPS:
            continue
        if isinstance(command, click.Group):
            audit_commands(command, path)
            continue
        callback = command.callback
        if callback is None or getattr(callback, "__estuary_audited__", False):
            continue
        command.callback = _audited(path, callback)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


# --- starting and following runs -------------------------------------------------------


def start_and_report(
    workflow_name: str, payload: Any, *, reason: str = "", wait: bool = False
) -> StartedRun:
    """Start a workflow, print its id and Web UI link, optionally follow it to the end."""
    gw = gateway()
    try:
        wf = registry.workflow(workflow_name)
        note_temporal_call(f"workflow:{wf.spec.business_id(payload, datetime.now(UTC))}")
        started = gw.start(workflow_name, payload, triggered_by=cli_actor(), reason=reason)
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
    url = run_ui_url(current_app.config, started.workflow_id, started.run_id)
    if started.existing:
        click.echo(
            f"Already running: {started.workflow_id} (run {started.run_id}); not started again"
        )
    else:
        click.echo(f"Started {workflow_name}: {started.workflow_id} (run {started.run_id})")
    click.echo(f"Web UI: {url}")
    if wait:
        follow_run(started.workflow_id, started.run_id)
    return started


def follow_run(workflow_id: str, run_id: str, poll_seconds: float = 1.0) -> None:
    """Print the run's `progress` whenever it changes until it closes; fail if it failed."""
    gw = gateway()
    last = None
    while True:
        try:
            info = gw.describe(workflow_id, run_id)
        except GatewayError as exc:
            raise click.ClickException(exc.message) from None
        if info.is_running:
            try:
                progress = gw.query(workflow_id, "progress", run_id)
            except GatewayError:
                progress = None
            if progress is not None and progress != last:
                click.echo(f"  progress: {json.dumps(progress, default=str, sort_keys=True)}")
                last = progress
            time.sleep(poll_seconds)
            continue
        if info.status == "Completed":
            result = gw.result(workflow_id, run_id)
            click.echo(f"Completed. Result: {json.dumps(_jsonable(result), default=str)}")
            return
        if info.status == "ContinuedAsNew":
            click.echo("Continued as new; following the next run")
            run_id = None  # type: ignore[assignment]
            continue
        raise click.ClickException(f"run ended {info.status}: {workflow_id} ({info.run_id})")


# --- the guide's commands ----------------------------------------------------------------


def list_workflows(domain_name: str | None = None) -> list[str]:
    lines: list[str] = []
    pool = [registry.domain(domain_name)] if domain_name else list(registry.domains().values())
    prefix = current_app.config.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
    for d in pool:
        lines.append(f"{d.name} (task queue {d.task_queue(prefix)})")
        lines.append("  workflows:")
        for wf in d.workflows.values():
            fields = ", ".join(
                f"{f.name}: {'money' if f.money else f.type_name}"
                + ("" if f.required else f" = {f.default!r}")
                for f in wf.input_fields
                if not f.internal
            )
            lines.append(f"    {wf.name}({fields})")
            lines.append(f"      {wf.spec.description}")
        lines.append("  activities:")
        for act in d.activities:
            lines.append(f"    {act.__temporal_activity_definition.name}")
    return lines


def trigger_workflow(
    domain_name: str,
    workflow_name: str,
    args: list[str],
    kwargs: list[str],
    reason: str,
    wait: bool,
) -> StartedRun:
    try:
        wf = registry.workflow(workflow_name, domain_name)
        values = positional_values(wf.spec.input_type, list(args))
        for key, value in parse_kwargs(list(kwargs)).items():
            if key in values:
                raise InputError({key: "given both positionally and as --kwargs"})
            values[key] = value
        refuse_server_filled(wf.spec.input_type, values)
        names = {f.name for f in dataclasses.fields(wf.spec.input_type)}
        values.update({name: cli_actor() for name in SERVER_FILLED if name in names})
        payload = parse_input(wf.spec.input_type, values)
        problems = missing_references(payload)
        if problems:
            raise InputError(problems)
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    except InputError as exc:
        raise click.ClickException(f"invalid input for {workflow_name}: {exc}") from None
    return start_and_report(workflow_name, payload, reason=reason, wait=wait)


def register_commands(app: Flask) -> None:
    @app.cli.command("start-worker")
    @click.option("--task-queue", default=None, help="Task queue to poll (default: the domain's)")
    @click.option(
        "--domains", "domain_names", multiple=True, required=True, help="Domain(s) to serve"
    )
    def start_worker_command(task_queue: str | None, domain_names: tuple[str, ...]) -> None:
        """Run a worker for one or more domains until Ctrl-C / SIGTERM."""

        names = [n for part in domain_names for n in part.split(",") if n]
        for name in names:
            try:
                registry.domain(name)
            except LookupError as exc:
                raise click.ClickException(str(exc.args[0])) from None
        if task_queue and len(names) > 1:
            raise click.ClickException("--task-queue can only be given with a single domain")
        _run_workers(current_app._get_current_object(), names, task_queue)

    @app.cli.command("start-all-workers")
    def start_all_workers_command() -> None:
        """Run one worker per domain task queue in this process until Ctrl-C / SIGTERM."""
        _run_workers(current_app._get_current_object(), list(registry.domains()), None)

    @app.cli.command("list-workflows")
    @click.option("--domain", "domain_name", default=None, help="Only this domain")
    def list_workflows_command(domain_name: str | None) -> None:
        """List registered workflows and activities by domain."""
        try:
            for line in list_workflows(domain_name):
                click.echo(line)
        except LookupError as exc:
            raise click.ClickException(str(exc.args[0])) from None

    @app.cli.command("trigger-workflows")
    @click.option("--domain", "domain_name", required=True)
    @click.option("--workflow", "workflow_name", required=True)
    @click.option("--args", "args", multiple=True, help="Positional input fields, in order")
    @click.option("--kwargs", "kwargs", multiple=True, help="field=value (repeatable)")
    @click.option("--reason", default="", help="Why (kept in the run's memo)")
    @click.option("--wait", is_flag=True, help="Follow the run until it ends")
    def trigger_workflows_command(
        domain_name: str,
        workflow_name: str,
        args: tuple[str, ...],
        kwargs: tuple[str, ...],
        reason: str,
        wait: bool,
    ) -> None:
        """Start any registered workflow with its input parsed from the command line."""
        trigger_workflow(domain_name, workflow_name, list(args), list(kwargs), reason, wait)

    @app.cli.command("seed-demo")
    @click.option("--admin-email", default="admin@estuary.local")
    def seed_demo_command(admin_email: str) -> None:
        """Create demo data and an admin login (its password is printed once)."""
        from dashboard.services.demo import seed_demo

        passwords = seed_demo(admin_email)
        if not passwords:
            click.echo("Demo data already present; nothing changed.")
            return
        click.echo("Demo staff logins (shown once; keep them or reset them in the console):")
        for email, password in passwords.items():
            click.echo(f"  {email} / {password}")

    @app.cli.command("seed-demo-runs")
    @click.option("--wait", "wait_seconds", default=30.0, help="Seconds to wait for each step")
    def seed_demo_runs_command(wait_seconds: float) -> None:
        """Start the demo's workflows (once; `make run` calls it when the workers poll)."""
        from workers.temporal.demo_runs import start_demo_runs

        report = start_demo_runs(gateway(), wait_seconds=wait_seconds)
        for line in report.started:
            click.echo(f"  started {line}")
        if report.already and not report.started:
            click.echo("Demo workflows already started; nothing new.")
        for line in report.problems:
            click.echo(f"  not done: {line}", err=True)
        if report.problems:
            raise click.ClickException("some demo workflows could not be set up (see above)")

    users = AppGroup("users", help="Staff accounts.")

    @users.command("create")
    @click.option("--email", required=True)
    @click.option("--name", default="")
    @click.option(
        "--role", required=True, type=click.Choice(["viewer", "operator", "approver", "admin"])
    )
    @click.option("--password", default=None, help="Default: a random one, printed once")
    def users_create_command(email: str, name: str, role: str, password: str | None) -> None:
        """Create a staff user."""
        from dashboard.services.staff import StaffError, create_user

        password = password or secrets.token_urlsafe(12)
        try:
            user = create_user(email=email, name=name or email, role=role, password=password)
        except StaffError as exc:
            raise click.ClickException(exc.message) from None
        note_target(f"staff:{user.id}")
        click.echo(f"Created {user.email} ({user.role}). Password: {password}")

    app.cli.add_command(users)

    from workers.temporal.schedules import schedules_cli

    app.cli.add_command(schedules_cli)

    from workers.temporal.deployment_cli import deployment_cli

    app.cli.add_command(deployment_cli)

    for d in registry.domains().values():
        for command in d.commands:
            app.cli.add_command(command)

    audit_commands(app.cli)


def _run_workers(app: Flask, names: list[str], task_queue: str | None) -> None:
    from workers.temporal.client import TemporalUnreachable
    from workers.temporal.telemetry import TelemetrySettingError
    from workers.temporal.versioning import VersioningSettingsError
    from workers.temporal.worker import run_workers

    click.echo(f"Starting workers for: {', '.join(names)}")
    try:
        asyncio.run(run_workers(app, names, task_queue))
    except (TemporalUnreachable, TelemetrySettingError, VersioningSettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        # Ctrl-C before the workers' own signal handling is installed (while connecting):
        # nothing was polling yet, so there is nothing to shut down.
        click.echo("Interrupted before the workers started.")
        raise SystemExit(130) from None
