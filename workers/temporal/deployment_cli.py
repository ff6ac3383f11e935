"""`flask deployment describe|set-current`: the Worker Deployment steps of a rolling
upgrade (docs/deployment.md), for each domain's deployment `{WORKER_DEPLOYMENT_NAME}-{domain}`.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError
from workers.temporal import registry
from workers.temporal.versioning import VersioningSettingsError, deployment_name

deployment_cli = AppGroup("deployment", help="Worker Deployment Versioning (rolling upgrades).")


def _deployments(domain_names: tuple[str, ...]) -> list[str]:
    names = list(domain_names) or list(registry.domains())
    out: list[str] = []
    for name in names:
        try:
            registry.domain(name)
            deployment = deployment_name(current_app.config, name)
        except (LookupError, VersioningSettingsError) as exc:
            raise click.ClickException(str(exc.args[0])) from None
        if deployment is None:
            raise click.ClickException(
                "WORKER_DEPLOYMENT_NAME is not set: workers are unversioned, there is no "
                "deployment to describe or promote"
            )
        out.append(deployment)
    return out


def describe_lines(domain_names: tuple[str, ...] = ()) -> list[str]:
    lines: list[str] = []
    for deployment in _deployments(domain_names):
        try:
            info = gateway().describe_deployment(deployment)
        except GatewayError as exc:
            lines.append(f"{deployment}: {exc.message}")
            continue
        ramp = (
            f", ramping {info.ramping_build_id} at {info.ramping_percentage:g}%"
            if info.ramping_build_id
            else ""
        )
        lines.append(f"{deployment}: current {info.current_build_id or '(unversioned)'}{ramp}")
        for v in info.versions:
            drainage = f", {v.drainage.lower()}" if v.drainage else ""
            lines.append(f"  {v.build_id}: {v.status.lower()}{drainage}")
    return lines


def set_current(build_id: str, domain_names: tuple[str, ...] = ()) -> list[str]:
    done: list[str] = []
    for deployment in _deployments(domain_names):
        try:
            gateway().set_current_version(deployment, build_id)
        except GatewayError as exc:
            raise click.ClickException(
                f"{deployment}: {exc.message}"
                + (f" (already switched: {', '.join(done)})" if done else "")
            ) from None
        done.append(deployment)
    return done


@deployment_cli.command("describe")
@click.option("--domain", "domain_names", multiple=True, help="Only these domains")
def describe_command(domain_names: tuple[str, ...]) -> None:
    """Each domain deployment's current version and the state of every version."""
    for line in describe_lines(domain_names):
        click.echo(line)


@deployment_cli.command("set-current")
@click.option("--build-id", required=True, help="The build whose workers take over")
@click.option("--domain", "domain_names", multiple=True, help="Only these domains")
def set_current_command(build_id: str, domain_names: tuple[str, ...]) -> None:
    """Route new runs (and auto-upgrade runs) to BUILD_ID's workers, domain by domain."""
    for deployment in set_current(build_id.strip(), domain_names):
        click.echo(f"{deployment}: current version is now {build_id.strip()}")
