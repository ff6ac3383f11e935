"""The workflow catalogue: which domains exist, the task queue each polls, and what the
console and the commands know about each workflow (its `WorkflowSpec`: input type,
business id, entity, signals and updates, money or not).

The domains themselves (`DOMAINS`, `task_queue`) are named once in
`estuary.contracts.domains` and re-exported here. The workers' registry
(`workers.temporal.registry`) discovers the workflow classes and is installed here as
the process's catalogue by the composition root (`estuary_ops.create_app`), so the
console looks workflows up by *name* through this module and never imports workflow
code; a test checks that what the registry finds equals `DOMAINS`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from estuary.contracts.domains import DOMAINS as DOMAINS
from estuary.contracts.domains import task_queue as task_queue
from estuary.contracts.inputs import is_internal_field
from estuary.contracts.spec import WorkflowSpec as WorkflowSpec


@dataclass(frozen=True)
class InputField:
    name: str
    type_name: str
    required: bool
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    money: bool = False  # integer cents, entered as an amount like 12.50
    internal: bool = False  # continuation state or config-filled: never typed by a person


@dataclass(frozen=True)
class RegisteredWorkflow:
    name: str
    cls: type
    spec: WorkflowSpec

    @property
    def domain(self) -> str:
        return self.spec.domain

    @property
    def input_fields(self) -> list[InputField]:
        return input_fields(self.spec.input_type)


@dataclass(frozen=True)
class ScheduleDefinition:
    schedule_id: str
    workflow_name: str
    # Builds the input each time a schedule is synced (not each time it fires).
    make_input: Any
    cron: str  # read in the schedule's time zone (see time_zones)
    description: str
    # Workflow id prefix; Temporal appends the fire time, so each firing is distinct.
    workflow_id_prefix: str
    # IANA zone of the cron; None: SCHEDULE_TIME_ZONE. SCHEDULE_TIME_ZONES overrides both.
    time_zone: str | None = None


class DomainEntry(Protocol):
    """One domain as the catalogue shows it: its name and workflows by type name."""

    name: str
    workflows: dict[str, RegisteredWorkflow]

    def task_queue(self, prefix: str = "") -> str: ...


class WorkflowSource(Protocol):
    """What provides the catalogue (the workers' registry)."""

    def domains(self) -> Mapping[str, DomainEntry]: ...

    def schedules(self) -> list[ScheduleDefinition]: ...


_source: WorkflowSource | None = None


def install(source: WorkflowSource) -> None:
    """Make `source` this process's catalogue (the composition root does, once)."""
    global _source
    _source = source


def _installed() -> WorkflowSource:
    if _source is None:
        raise RuntimeError(
            "no workflow catalogue installed: build the app with estuary_ops.create_app()"
        )
    return _source


def domains() -> Mapping[str, DomainEntry]:
    """Every domain with workflows, by name, in a stable order."""
    return _installed().domains()


def domain(name: str) -> DomainEntry:
    try:
        return domains()[name]
    except KeyError:
        known = ", ".join(domains()) or "none"
        raise LookupError(f"unknown domain {name!r} (known: {known})") from None


def workflow(name: str, domain_name: str | None = None) -> RegisteredWorkflow:
    """Look up a workflow by type name, optionally checking it belongs to a domain."""
    pool = [domain(domain_name)] if domain_name else list(domains().values())
    for d in pool:
        if name in d.workflows:
            return d.workflows[name]
    where = f" in domain {domain_name!r}" if domain_name else ""
    known = ", ".join(w for d in pool for w in d.workflows)
    raise LookupError(f"unknown workflow {name!r}{where} (known: {known})")


def all_workflows() -> list[RegisteredWorkflow]:
    return [w for d in domains().values() for w in d.workflows.values()]


def schedules() -> list[ScheduleDefinition]:
    """The Temporal Schedules defined in code, every domain's."""
    return _installed().schedules()


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and args:
        return _type_name(args[0])
    if origin in (list, tuple) and args:
        return f"list[{_type_name(args[0])}]"
    if origin is typing.Literal:
        return "choice"
    return getattr(tp, "__name__", str(tp))


def field_is_internal(f: dataclasses.Field) -> bool:
    """Fields a person never sets (`inputs.is_internal_field` holds the one rule)."""
    return is_internal_field(f)


def input_fields(input_type: type) -> list[InputField]:
    """The fields of a workflow input dataclass, for forms, commands and the catalogue."""
    hints = typing.get_type_hints(input_type, include_extras=True)
    out: list[InputField] = []
    for f in dataclasses.fields(input_type):
        tp = hints[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        base = tp
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # Optional[X] -> X
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            base = args[0] if args else tp
        if typing.get_origin(base) in (list, tuple):  # list[Literal[...]]: a multi-select
            base = (typing.get_args(base) or (str,))[0]
        choices = tuple(typing.get_args(base)) if typing.get_origin(base) is typing.Literal else ()
        out.append(
            InputField(
                name=f.name,
                type_name=_type_name(tp),
                required=required,
                default=default,
                help=f.metadata.get("help", ""),
                choices=choices,
                money=bool(f.metadata.get("money")),
                internal=field_is_internal(f),
            )
        )
    return out
