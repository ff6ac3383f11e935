"""Discovery: every domain's workflow modules, activity modules and `schedules.py`
(the domain's `commands.py` is loaded by `workers.temporal.cli`, which registers it).

A domain is a package under `workers/` (other than `temporal`). Its workflows live in
`workers/<domain>/workflows.py` or, one module per workflow or small family, in
`workers/<domain>/<feature>/workflows.py` with the feature's activities beside them in
`<feature>/activities.py`; activities several features use sit in
`workers/<domain>/activities.py`. A domain's `workflows.py` may also gather workflows
defined in other modules of its package (payments keeps one module per workflow beside
it). Adding a domain means adding that package and its name to
`estuary.contracts.catalogue.DOMAINS` (a test checks the two agree). This module is the
catalogue's source (`catalogue.install(registry)`); the lookups (`workflow`, `domain`,
`all_workflows`, `input_fields`) are the catalogue's, re-exported here for the workers.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from estuary.contracts import catalogue
from estuary.contracts.catalogue import (  # noqa: F401  (the registry's public names)
    InputField,
    RegisteredWorkflow,
    ScheduleDefinition,
    all_workflows,
    domain,
    field_is_internal,
    input_fields,
    workflow,
)
from workers.temporal.decorators import spec_of

CORE_PACKAGE = "temporal"
# The `workers` package directory, found by path: importing the package from here would
# close a cycle through its `register_commands`.
WORKERS_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Domain:
    name: str
    workflows: dict[str, RegisteredWorkflow] = field(default_factory=dict)
    activities: list[Any] = field(default_factory=list)

    def task_queue(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def part_modules(domain_name: str, part: str) -> list[str]:
    """The names of a domain's `part` modules (`workflows` or `activities`): the domain's
    own, then each feature sub-package's, in name order (only those that exist)."""
    base = WORKERS_DIR / domain_name
    names = [f"workers.{domain_name}.{part}"] if (base / f"{part}.py").is_file() else []
    for info in sorted(pkgutil.iter_modules([str(base)]), key=lambda i: i.name):
        if info.ispkg and (base / info.name / f"{part}.py").is_file():
            names.append(f"workers.{domain_name}.{info.name}.{part}")
    return names


def _workflows_of(module: ModuleType, package: str) -> dict[str, RegisteredWorkflow]:
    """The monitored workflow classes in `module` defined in the domain's `package` (a
    `workflows.py` may gather its package's per-workflow modules), by type name."""
    found: dict[str, RegisteredWorkflow] = {}
    for obj in vars(module).values():
        spec = spec_of(obj) if isinstance(obj, type) else None
        defn = getattr(obj, "__temporal_workflow_definition", None)
        if spec is None or defn is None or not obj.__module__.startswith(package):
            continue
        found[defn.name] = RegisteredWorkflow(defn.name, obj, spec)
    return found


def _activities_of(module: ModuleType) -> dict[str, Any]:
    """The activities in `module`, by activity name."""
    return {
        obj.__temporal_activity_definition.name: obj
        for obj in vars(module).values()
        if callable(obj) and hasattr(obj, "__temporal_activity_definition")
    }


@cache
def domains() -> dict[str, Domain]:
    """All domains found under `workers/`, by name, in a stable order."""
    found: dict[str, Domain] = {}
    for info in sorted(pkgutil.iter_modules([str(WORKERS_DIR)]), key=lambda i: i.name):
        if not info.ispkg or info.name == CORE_PACKAGE:
            continue
        workflow_modules = part_modules(info.name, "workflows")
        if not workflow_modules:
            continue
        entry = Domain(info.name)
        for name in workflow_modules:
            module = importlib.import_module(name)
            entry.workflows.update(_workflows_of(module, f"workers.{info.name}."))
        activities: dict[str, Any] = {}
        for name in part_modules(info.name, "activities"):
            activities.update(_activities_of(importlib.import_module(name)))
        entry.activities = list(activities.values())
        found[info.name] = entry
    return found


def schedules() -> list[ScheduleDefinition]:
    """Every domain's `workers/<domain>/schedules.py: SCHEDULES`, in domain order."""
    found: list[ScheduleDefinition] = []
    for name in domains():
        module = _optional_module(f"workers.{name}.schedules")
        if module is not None:
            found.extend(getattr(module, "SCHEDULES", []))
    return found


# Wherever the workers' code runs (a worker, a command, a test), the catalogue's lookups
# answer from this registry; the composition root installs it for the console too.
catalogue.install(sys.modules[__name__])
