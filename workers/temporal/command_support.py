"""Starting and following a run from the command line (`start_and_report`, `follow_run`):
used by the guide's commands (`workers.temporal.cli`) and every domain's own
(`workers/<domain>/commands.py`). The actor and the audit trail of a command are the
domain's (`estuary.services.command_audit`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

import click
from flask import current_app

from estuary.contracts import catalogue
from estuary.services.command_audit import cli_actor, note_temporal_call
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError, StartedRun, run_ui_url


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
        wf = catalogue.workflow(workflow_name)
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
