"""The modules passed through the workflow sandbox stay safe to share between runs, and the
workflow modules stay light to re-import (docs/performance.md, "The sandbox").

A passed-through module is imported once per worker and shared by every workflow run, so
it may import only the standard library, temporalio and other passed-through modules:
anything else (Flask, SQLAlchemy, the services) could bring import-time side effects or
I/O into workflow code without the sandbox noticing. A workflow module is re-imported for
every new run: at module level it imports only passed-through modules, other workflow
modules, and (inside `imports_passed_through()`, by full module name) its activities.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from workers.temporal import code_cache, registry
from workers.temporal.worker import WORKFLOW_PASSTHROUGH_MODULES

ROOT = Path(__file__).resolve().parent.parent


def _source(module: str) -> ast.Module:
    path = ROOT / (module.replace(".", "/") + ".py")
    return ast.parse(path.read_text(), filename=str(path))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from workers.temporal import policies` imports workers.temporal.policies.
        return [f"{node.module}.{a.name}" for a in node.names]
    return []


def _allowed_for_passthrough(name: str) -> bool:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("temporalio", "__future__"):
        return True
    return any(name == m or name.startswith(m + ".") for m in WORKFLOW_PASSTHROUGH_MODULES)


@pytest.mark.parametrize("module", WORKFLOW_PASSTHROUGH_MODULES)
def test_a_passed_through_module_imports_only_stdlib_temporalio_and_passthrough(
    module: str,
) -> None:
    importlib.import_module(module)
    bad = sorted(
        {
            name
            for node in ast.walk(_source(module))
            for name in _imported(node)
            if not _allowed_for_passthrough(name)
        }
    )
    assert bad == [], f"{module} is passed through the sandbox but imports {bad}"


def _passed_through_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.With) and any(
        "imports_passed_through" in ast.unparse(item.context_expr) for item in node.items
    )


WORKFLOW_MODULES = sorted({w.cls.__module__ for w in registry.all_workflows()})


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _module_of(name: str) -> str:
    """`a.b.C` (a name imported from module a.b) -> `a.b`; a module name stays itself."""
    return name if _is_module(name) else name.rpartition(".")[0]


def _workflow_side_modules() -> list[str]:
    """The registered workflows' modules and the modules of ours they import outside
    `imports_passed_through()` (the steps a large workflow class builds on, another
    workflow it starts): all of them are re-imported for every run, so each is checked."""
    found: set[str] = set()
    todo = list(WORKFLOW_MODULES)
    while todo:
        module = todo.pop()
        if module in found:
            continue
        found.add(module)
        for node in _source(module).body:
            if _passed_through_block(node):
                continue
            todo.extend(
                _module_of(name)
                for name in _imported(node)
                if name.startswith("workers.") and not _allowed_for_passthrough(name)
            )
    return sorted(found)


WORKFLOW_SIDE_MODULES = _workflow_side_modules()


@pytest.mark.parametrize("module", WORKFLOW_SIDE_MODULES)
def test_a_workflow_module_re_imports_nothing_heavy(module: str) -> None:
    bad = []
    for node in _source(module).body:
        if _passed_through_block(node):
            continue
        for name in _imported(node):
            if _allowed_for_passthrough(name) or _module_of(name) in WORKFLOW_SIDE_MODULES:
                continue
            bad.append(name)
    assert bad == [], (
        f"{module} is re-imported for every workflow run but imports {bad} outside "
        "imports_passed_through(); pass the module through the sandbox deliberately "
        "(WORKFLOW_PASSTHROUGH_MODULES, with its determinism argument) or import it there"
    )


@pytest.mark.parametrize("module", WORKFLOW_SIDE_MODULES)
def test_passed_through_imports_name_the_module_itself(module: str) -> None:
    """`from workers.payments import activities` under `imports_passed_through()` imports
    the package `workers.payments` (sandboxed: a fresh copy per run, without the
    attribute), and Python then loads the submodule straight from disk inside the sandbox,
    running activities.py again for every run. `import workers.payments.activities as
    activities` asks the sandbox for the module by name, and the host's copy is passed
    through."""
    bad = [
        f"from {node.module} import {alias.name}"
        for block in _source(module).body
        if _passed_through_block(block)
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if _is_module(f"{node.module}.{alias.name}")
    ]
    assert bad == [], f"{module}: {bad} re-executes the submodule in every run's sandbox"


def test_every_registered_payments_workflow_has_a_module_of_its_own_family() -> None:
    modules = {w.name: w.cls.__module__ for w in registry.domain("payments").workflows.values()}
    assert modules["PractitionerPayoutWorkflow"] == "workers.payments.payout_workflow"
    assert modules["BatchPractitionerPayoutWorkflow"] == "workers.payments.batch_workflow"


def test_the_code_cache_compiles_a_workflow_module_once() -> None:
    code_cache.install()
    code_cache.install()  # idempotent
    assert sum(isinstance(f, code_cache.CompiledCodeCache) for f in sys.meta_path) == 1
    finder = next(f for f in sys.meta_path if isinstance(f, code_cache.CompiledCodeCache))
    package_path = importlib.import_module("workers.payments").__path__
    spec = finder.find_spec("workers.payments.payout_workflow", package_path)
    assert spec is not None and spec.loader is not None
    first = spec.loader.get_code("workers.payments.payout_workflow")
    again = finder.find_spec("workers.payments.payout_workflow", package_path)
    assert again.loader.get_code("workers.payments.payout_workflow") is first
    assert finder.find_spec("json", None) is None  # only our modules
