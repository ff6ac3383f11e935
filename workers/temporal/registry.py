"""Discovery: every domain's workflow modules and activity modules, checked against the
catalogue (the domain's `commands.py` is loaded by `workers.temporal.cli`, which
registers it).

A domain is a package under `workers/` (other than `temporal`). Its workflows live in
`workers/<domain>/workflows.py` or, one module per workflow or small family, in
`workers/<domain>/<feature>/workflows.py` with the feature's activities beside them in
`<feature>/activities.py`; activities several features use sit in
`workers/<domain>/activities.py`. A domain's `workflows.py` may also gather workflows
defined in other modules of its package (payments keeps one module per workflow beside
it). What the console knows of each workflow is data in `estuary.contracts.specs.<domain>`
(the catalogue); the registry pairs each class with its spec by workflow name and refuses
(`CatalogueMismatch`) a domain whose classes and specs differ: a class or spec without the
other, another input type, a signal, update or query the spec names that the class lacks
or types differently. Adding a domain means adding that package, its spec module and its
name to `estuary.contracts.domains.DOMAINS` (a test checks they agree).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from estuary.contracts import catalogue
from estuary.contracts.catalogue import (  # noqa: F401  (the registry's public names)
    InputField,
    ScheduleDefinition,
    field_is_internal,
    input_fields,
    schedules,
)
from estuary.contracts.spec import WorkflowSpec

CORE_PACKAGE = "temporal"
# The `workers` package directory, found by path: importing the package from here would
# close a cycle through its `register_commands`.
WORKERS_DIR = Path(__file__).resolve().parent.parent


class CatalogueMismatch(RuntimeError):
    """The workflow classes of a domain disagree with its catalogue entry; no worker runs."""


@dataclass(frozen=True)
class WorkflowClass:
    """A discovered workflow class with its catalogue entry (looked up by name each time,
    so the registry and the console always read the same spec)."""

    name: str
    cls: type

    @property
    def spec(self) -> WorkflowSpec:
        return catalogue.workflow(self.name).spec

    @property
    def domain(self) -> str:
        return self.spec.domain

    @property
    def input_fields(self) -> list[InputField]:
        return input_fields(self.spec.input_type)


@dataclass
class Domain:
    name: str
    workflows: dict[str, WorkflowClass] = field(default_factory=dict)
    activities: list[Any] = field(default_factory=list)

    def task_queue(self, prefix: str = "") -> str:
        return catalogue.task_queue(self.name, prefix)


def part_modules(domain_name: str, part: str) -> list[str]:
    """The names of a domain's `part` modules (`workflows` or `activities`): the domain's
    own, then each feature sub-package's, in name order (only those that exist)."""
    base = WORKERS_DIR / domain_name
    names = [f"workers.{domain_name}.{part}"] if (base / f"{part}.py").is_file() else []
    for info in sorted(pkgutil.iter_modules([str(base)]), key=lambda i: i.name):
        if info.ispkg and (base / info.name / f"{part}.py").is_file():
            names.append(f"workers.{domain_name}.{info.name}.{part}")
    return names


def _workflows_of(module: ModuleType, package: str) -> dict[str, type]:
    """The workflow classes in `module` defined in the domain's `package` (a
    `workflows.py` may gather its package's per-workflow modules), by type name."""
    found: dict[str, type] = {}
    for obj in vars(module).values():
        defn = getattr(obj, "__temporal_workflow_definition", None)
        if isinstance(obj, type) and defn is not None and obj.__module__.startswith(package):
            found[defn.name] = obj
    return found


def _handler_problems(kind: str, declared: tuple, defined: dict[str | None, Any]) -> list[str]:
    """What differs between a spec's signals/updates (name, argument type) and the
    class's handlers of that kind: each declared one must exist and take that type."""
    problems = []
    for name, arg_type in declared:
        handler = defined.get(name)
        if handler is None:
            problems.append(f"{kind} {name!r} is in the catalogue but not on the class")
            continue
        expected = [arg_type] if arg_type is not None else []
        if list(handler.arg_types or []) != expected:
            problems.append(f"{kind} {name!r} takes {handler.arg_types}, catalogue: {expected}")
    return problems


def catalogue_problems(cls: type, spec: WorkflowSpec) -> list[str]:
    """What differs between a workflow class and its catalogue spec (empty: they agree):
    the input type of `run`, and every signal, update and query the catalogue names."""
    defn = cls.__temporal_workflow_definition  # type: ignore[attr-defined]
    problems = []
    if list(defn.arg_types or []) != [spec.input_type]:
        problems.append(f"run takes {defn.arg_types}, catalogue: [{spec.input_type.__name__}]")
    problems += _handler_problems("signal", spec.signals, defn.signals)
    problems += _handler_problems("update", spec.updates, defn.updates)
    problems += _handler_problems("query", tuple((q, None) for q in spec.queries), defn.queries)
    return problems


def checked_workflows(domain_name: str, classes: dict[str, type]) -> dict[str, WorkflowClass]:
    """The domain's classes in catalogue order, once they match its catalogue exactly:
    the same workflow names, each class agreeing with its spec. Raises
    `CatalogueMismatch` naming every difference."""
    if domain_name not in catalogue.domains():
        raise CatalogueMismatch(
            f"workers/{domain_name} is a domain package that estuary.contracts.domains."
            f"DOMAINS does not name"
        )
    declared = catalogue.domain(domain_name).workflows
    problems = [
        f"{name}: a workflow class with no catalogue entry"
        for name in sorted(classes.keys() - declared.keys())
    ]
    problems += [
        f"{name}: in the catalogue, no workflow class"
        for name in sorted(declared.keys() - classes.keys())
    ]
    for name, cls in classes.items():
        if name in declared:
            problems += [f"{name}: {p}" for p in catalogue_problems(cls, declared[name].spec)]
    if problems:
        raise CatalogueMismatch(
            f"workers/{domain_name} disagrees with estuary.contracts.specs.{domain_name}: "
            + "; ".join(problems)
        )
    return {name: WorkflowClass(name, classes[name]) for name in declared}


def _activities_of(module: ModuleType) -> dict[str, Any]:
    """The activities in `module`, by activity name."""
    return {
        obj.__temporal_activity_definition.name: obj
        for obj in vars(module).values()
        if callable(obj) and hasattr(obj, "__temporal_activity_definition")
    }


@cache
def domains() -> dict[str, Domain]:
    """All domains found under `workers/`, by name, in a stable order, each checked
    against the catalogue."""
    found: dict[str, Domain] = {}
    for info in sorted(pkgutil.iter_modules([str(WORKERS_DIR)]), key=lambda i: i.name):
        if not info.ispkg or info.name == CORE_PACKAGE:
            continue
        workflow_modules = part_modules(info.name, "workflows")
        if not workflow_modules:
            continue
        classes: dict[str, type] = {}
        for name in workflow_modules:
            module = importlib.import_module(name)
            classes.update(_workflows_of(module, f"workers.{info.name}."))
        entry = Domain(info.name, checked_workflows(info.name, classes))
        activities: dict[str, Any] = {}
        for name in part_modules(info.name, "activities"):
            activities.update(_activities_of(importlib.import_module(name)))
        entry.activities = list(activities.values())
        found[info.name] = entry
    return found


def domain(name: str) -> Domain:
    """A domain by name; the catalogue says what is known, so an unknown name reads as it
    does there (the registry equals the catalogue, `domains` checks it)."""
    catalogue.domain(name)
    return domains()[name]


def workflow(name: str, domain_name: str | None = None) -> WorkflowClass:
    """A workflow class by type name (optionally checking its domain); the catalogue
    says what is known, so an unknown name reads as it does there."""
    entry = catalogue.workflow(name, domain_name)
    return domain(entry.domain).workflows[name]


def all_workflows() -> list[WorkflowClass]:
    return [w for d in domains().values() for w in d.workflows.values()]
