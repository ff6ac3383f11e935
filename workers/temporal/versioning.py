"""Worker Deployment Versioning: which deployment and build a worker belongs to.

With `WORKER_DEPLOYMENT_NAME` set, each domain's workers join the Worker Deployment
`{WORKER_DEPLOYMENT_NAME}-{domain}` (e.g. `estuary-payments`) as version
`WORKER_BUILD_ID` (the release's build id, e.g. the git commit). The server then sends
each workflow task to a version of that deployment:

- new runs start on the deployment's *current* version, set by
  `flask deployment set-current --build-id B` once the new workers poll;
- `auto_upgrade` runs (our default, `WORKER_VERSIONING_BEHAVIOR`) move to the current
  version at their next workflow task, so changed workflow code must replay their history
  (`workflow.patched()`, the replay test);
- `pinned` runs stay on the version they started on until they close, so the old
  workers must keep running until that version is drained.

Without `WORKER_DEPLOYMENT_NAME` workers are unversioned (development and tests): every
worker on the queue takes every task. docs/deployment.md describes a rolling upgrade.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

BEHAVIORS = {
    "auto_upgrade": VersioningBehavior.AUTO_UPGRADE,
    "pinned": VersioningBehavior.PINNED,
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class VersioningSettingsError(ValueError):
    """A versioning setting is malformed; the message names it."""


def deployment_name(config: Mapping[str, Any], domain: str) -> str | None:
    """The Worker Deployment of a domain's workers, or None when versioning is off."""
    base = str(config.get("WORKER_DEPLOYMENT_NAME") or "").strip()
    if not base:
        return None
    if not _NAME.match(base):
        raise VersioningSettingsError(
            f"WORKER_DEPLOYMENT_NAME {base!r} may only hold letters, digits, '.', '_' and '-'"
        )
    return f"{base}-{domain}"


def build_id(config: Mapping[str, Any]) -> str:
    value = str(config.get("WORKER_BUILD_ID") or "").strip()
    if not value:
        raise VersioningSettingsError(
            "WORKER_BUILD_ID must be set when WORKER_DEPLOYMENT_NAME is (e.g. the release's "
            "git commit)"
        )
    if not _NAME.match(value):
        raise VersioningSettingsError(
            f"WORKER_BUILD_ID {value!r} may only hold letters, digits, '.', '_' and '-'"
        )
    return value


def default_behavior(config: Mapping[str, Any]) -> VersioningBehavior:
    raw = str(config.get("WORKER_VERSIONING_BEHAVIOR") or "auto_upgrade").strip().lower()
    try:
        return BEHAVIORS[raw]
    except KeyError:
        raise VersioningSettingsError(
            f"WORKER_VERSIONING_BEHAVIOR must be one of {', '.join(BEHAVIORS)}, got {raw!r}"
        ) from None


def deployment_config(config: Mapping[str, Any], domain: str) -> WorkerDeploymentConfig | None:
    """The versioning options for a domain's worker (None: unversioned)."""
    name = deployment_name(config, domain)
    if name is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=name, build_id=build_id(config)),
        use_worker_versioning=True,
        default_versioning_behavior=default_behavior(config),
    )
