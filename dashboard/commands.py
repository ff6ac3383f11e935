"""The console's `flask` commands: demo data and logins (`seed-demo`), the demo's
workflows (`seed-demo-runs`), staff accounts
(`users create`) and the audit chain check (`audit verify`). Registered by
`register_commands(app)`, which the composition root (`estuary_ops`) calls."""

from __future__ import annotations

import secrets

import click
from flask import Flask
from flask.cli import AppGroup

from estuary.services import audit as audit_service
from estuary.services.command_audit import note_target

audit_group = AppGroup("audit", help="The audit trail.")


def verify_chain() -> audit_service.ChainCheck:
    return audit_service.verify()


@audit_group.command("verify")
def verify_command() -> None:
    """Check every audit event's MAC, sequence and link, and the anchored heads; anchor
    the current head; exit 1 naming the first broken sequence number if any."""
    check = verify_chain()
    for warning in check.warnings:
        click.echo(f"warning: {warning}", err=True)
    if check.ok:
        click.echo(f"Audit chain intact: {check.events} events verified.")
        if check.anchored is not None:
            click.echo(
                f"Head anchored: sequence number {check.anchored.seq} "
                f"(anchor line {check.anchored.line})."
            )
        return
    where = f"sequence number {check.seq}" if check.seq is not None else "the anchor file"
    event = f", event id {check.event_id}" if check.event_id is not None else ""
    click.echo(
        f"AUDIT CHAIN BROKEN at {where} ({check.kind}{event}; {check.events} checked): "
        f"{check.problem}",
        err=True,
    )
    raise SystemExit(1)


def register_commands(app: Flask) -> None:
    """Register the console's commands on `app`."""

    @app.cli.command("seed-demo")
    @click.option("--admin-email", default="admin@estuary.local")
    def seed_demo_command(admin_email: str) -> None:
        """Create demo data and an admin login (its password is printed once)."""
        from estuary.services.demo import seed_demo

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
        from dashboard.demo_runs import start_demo_runs
        from temporal_gateway.access import gateway

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
        from estuary.services.staff import StaffError, create_user

        password = password or secrets.token_urlsafe(12)
        try:
            user = create_user(email=email, name=name or email, role=role, password=password)
        except StaffError as exc:
            raise click.ClickException(exc.message) from None
        note_target(f"staff:{user.id}")
        click.echo(f"Created {user.email} ({user.role}). Password: {password}")

    app.cli.add_command(users)

    app.cli.add_command(audit_group)
