"""The `flask` commands of the guide: start-worker, start-all-workers, list-workflows,
trigger-workflows, plus seed-demo, users and every domain's own trigger command.

Each command is a plain function with a thin click wrapper (flaskr style).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib

import click
from flask import Flask, current_app

from estuary.contracts.inputs import (
    SERVER_FILLED,
    InputError,
    parse_input,
    parse_kwargs,
    positional_values,
    refuse_server_filled,
)
from estuary.services.command_audit import cli_actor
from estuary.services.references import missing_references
from temporal_gateway.gateway import StartedRun
from workers.temporal import registry
from workers.temporal.command_support import start_and_report

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
    """The worker side's commands: workers, list and trigger workflows, schedules,
    deployment versioning, and each domain's own (`workers/<domain>/commands.py`)."""
    _register_worker_commands(app)
    _register_workflow_commands(app)

    from workers.temporal.schedules import schedules_cli

    app.cli.add_command(schedules_cli)

    from workers.temporal.deployment_cli import deployment_cli

    app.cli.add_command(deployment_cli)

    for d in registry.domains().values():
        for command in _domain_commands(d.name):
            app.cli.add_command(command)


def _register_worker_commands(app: Flask) -> None:
    """`start-worker` and `start-all-workers`."""

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


def _register_workflow_commands(app: Flask) -> None:
    """`list-workflows` and `trigger-workflows`."""

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


def _run_workers(app: Flask, names: list[str], task_queue: str | None) -> None:
    from temporal_gateway.client import TemporalUnreachable
    from temporal_gateway.telemetry import TelemetrySettingError
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


def _domain_commands(domain_name: str) -> list[click.Command]:
    """`workers/<domain>/commands.py: COMMANDS`, the domain's own commands (none if absent).

    Loaded here, where they are registered, not by the registry: the commands use the
    helpers in `command_support`, and the registry must not load what imports it back.
    """
    name = f"workers.{domain_name}.commands"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return []
        raise
    return list(getattr(module, "COMMANDS", []))
