"""Discovery: every `workers/<domain>/workflows.py`, `activities.py` and `commands.py`.

`workflows.py` names the domain's workflows; they may be defined there or in other modules
of the same package (payments keeps one module per workflow).

A domain is a package under `workers/` (other than `temporal`) with a `workflows.py`.
Adding a domain means adding that package; nothing here changes.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import click

import workers
from workers.temporal.decorators import WorkflowSpec, spec_of
from workers.temporal.inputs import is_internal_field

CORE_PACKAGE = "temporal"


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


@dataclass
class Domain:
    name: str
    workflows: dict[str, RegisteredWorkflow] = field(default_factory=dict)
    activities: list[Any] = field(default_factory=list)
    commands: list[click.Command] = field(default_factory=list)

    def task_queue(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


@cache
def domains() -> dict[str, Domain]:
    """All domains found under `workers/`, by name, in a stable order."""
    found: dict[str, Domain] = {}
    for info in sorted(pkgutil.iter_modules(workers.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name == CORE_PACKAGE:
            continue
        wf_module = _optional_module(f"workers.{info.name}.workflows")
        if wf_module is None:
            continue
        domain = Domain(info.name)
        package = f"workers.{info.name}."
        for obj in vars(wf_module).values():
            spec = spec_of(obj) if isinstance(obj, type) else None
            defn = getattr(obj, "__temporal_workflow_definition", None)
            # A domain's workflows.py may gather workflows from modules of its own package
            # (one module per workflow keeps the sandbox's per-run re-import small).
            if spec is None or defn is None or not obj.__module__.startswith(package):
                continue
            domain.workflows[defn.name] = RegisteredWorkflow(defn.name, obj, spec)
        act_module = _optional_module(f"workers.{info.name}.activities")
        if act_module is not None:
            domain.activities = [
                obj
                for obj in vars(act_module).values()
                if callable(obj) and hasattr(obj, "__temporal_activity_definition")
            ]
        cmd_module = _optional_module(f"workers.{info.name}.commands")
        if cmd_module is not None:
            domain.commands = list(getattr(cmd_module, "COMMANDS", []))
        found[info.name] = domain
    return found


def domain(name: str) -> Domain:
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
