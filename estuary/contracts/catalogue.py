"""The workflow catalogue: which domains exist, the task queue each polls, and what the
console and the commands know about each workflow (its `WorkflowSpec`: input type,
business id, entity, signals, updates and queries, money or not) and each schedule.

It is data: the domains are named once in `estuary.contracts.domains` (re-exported here),
each domain's workflows and schedules are declared in `estuary.contracts.specs.<domain>`.
The console and the gateway look workflows up by *name* here and start them with the
contract dataclasses, so no console process imports workflow or activity code. The
workers' registry (`workers.temporal.registry`) checks the classes it discovers against
this catalogue and refuses a worker whose classes disagree with it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from estuary.contracts.domains import DOMAINS as DOMAINS
from estuary.contracts.domains import task_queue as task_queue
from estuary.contracts.field_types import resolve_field_types
from estuary.contracts.inputs import is_internal_field
from estuary.contracts.spec import ScheduleDefinition as ScheduleDefinition
from estuary.contracts.spec import WorkflowSpec as WorkflowSpec
from estuary.contracts.specs import bookings, maintenance, payments, practitioners

# Each domain's spec module, by the domain it declares.
SPEC_MODULES: dict[str, ModuleType] = {
    m.DOMAIN: m for m in (bookings, maintenance, payments, practitioners)
}


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
    """A workflow of the catalogue: its type name and spec."""

    name: str
    spec: WorkflowSpec

    @property
    def domain(self) -> str:
        return self.spec.domain

    @property
    def input_fields(self) -> list[InputField]:
        return input_fields(self.spec.input_type)


@dataclass
class CatalogueDomain:
    """One domain as the catalogue shows it: its name and workflows by type name."""

    name: str
    workflows: dict[str, RegisteredWorkflow] = field(default_factory=dict)

    def task_queue(self, prefix: str = "") -> str:
        return task_queue(self.name, prefix)


@cache
def domains() -> dict[str, CatalogueDomain]:
    """Every domain, by name, in `DOMAINS` order, with its workflows in declared order."""
    found: dict[str, CatalogueDomain] = {}
    for name in DOMAINS:
        entry = CatalogueDomain(name)
        for spec in SPEC_MODULES[name].WORKFLOWS:
            entry.workflows[spec.name] = RegisteredWorkflow(spec.name, spec)
        found[name] = entry
    return found


def domain(name: str) -> CatalogueDomain:
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
    """The Temporal Schedules defined in code, every domain's (read at each call)."""
    return [s for name in DOMAINS for s in SPEC_MODULES[name].SCHEDULES]


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


resolve_field_types(__name__)
