"""Every contracts dataclass has its field types resolved at import
(`estuary.contracts.field_types`): the payload converter reads them on every decode, and
a module that forgets `resolve_field_types(__name__)` would evaluate them again each time."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import typing

import estuary.contracts


def _contract_dataclasses() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(estuary.contracts.__path__, "estuary.contracts."):
        module = importlib.import_module(info.name)
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and dataclasses.is_dataclass(value)
            and value.__module__ == info.name
        ]
    return found


def test_every_contract_dataclass_has_its_field_types_as_objects():
    classes = _contract_dataclasses()
    assert len(classes) > 100
    texts = {
        f"{c.__module__}.{c.__qualname__}.{name}"
        for c in classes
        for name, hint in inspect.get_annotations(c).items()
        if isinstance(hint, str)
    }
    assert not texts, f"annotations left as text: {sorted(texts)[:5]}"
    for c in classes:  # the same types the converter would have evaluated
        own = inspect.get_annotations(c)
        assert {n: typing.get_type_hints(c)[n] for n in own} == own
