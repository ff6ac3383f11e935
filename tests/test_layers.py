"""The layers hold: the workers' registry finds exactly the domains the contracts
catalogue names, nothing imports in a cycle (counting what is loaded by name with
`import_module`), and the README's command table names exactly the `flask` commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import grimp

from estuary.contracts import catalogue
from workers.temporal import registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "workers", "estuary", "temporal_gateway")


def test_the_registry_finds_exactly_the_catalogue_domains():
    assert tuple(registry.domains()) == catalogue.DOMAINS


def test_every_workflow_sits_in_its_domain_package_and_queue():
    for name, domain in registry.domains().items():
        assert domain.workflows, f"{name} has no workflows"
        assert domain.task_queue("p-") == catalogue.task_queue(name, "p-") == f"p-{name}"
        for wf in domain.workflows.values():
            assert wf.domain == name
            # In a domain's workflows.py or a module of its package (one module per workflow,
            # in sub-packages or beside workflows.py: the sandbox re-imports a run's module).
            assert wf.cls.__module__.startswith(f"workers.{name}.")
            assert catalogue.workflow(wf.name) is wf


def _loaded_by_name(graph: grimp.ImportGraph) -> None:
    """Add the imports made with `import_module` (registry, cli) to the graph."""
    for domain in catalogue.DOMAINS:
        loaded = [
            *registry.part_modules(domain, "workflows"),
            *registry.part_modules(domain, "activities"),
            f"workers.{domain}.schedules",
        ]
        for module in loaded:
            if module in graph.modules:
                graph.add_import(importer="workers.temporal.registry", imported=module)
        commands = f"workers.{domain}.commands"
        if commands in graph.modules:
            graph.add_import(importer="workers.temporal.cli", imported=commands)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_counting_modules_loaded_by_name():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    _loaded_by_name(graph)
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_cycle():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    graph.add_import(importer="estuary.contracts.catalogue", imported="workers.temporal.registry")
    cycles = _cycles(graph)
    assert any(
        {"estuary.contracts.catalogue", "workers.temporal.registry"} <= set(c) for c in cycles
    )


def _flask_help_commands(tmp_path: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(
        FLASK_APP="estuary_ops", ESTUARY_ENV="development", ESTUARY_VAR_DIR=str(tmp_path / "var")
    )
    out = subprocess.run(
        [sys.executable, "-m", "flask", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    listing = out.split("\nCommands:\n", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  ([a-z][a-z0-9-]*)", listing, re.MULTILINE)}


def _readme_commands() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `flask "):
            first_column = line.split(" | ", 1)[0]
            names |= set(re.findall(r"`flask ([a-z][a-z0-9-]*)", first_column))
    return names


def test_the_readme_command_table_names_exactly_the_flask_commands(tmp_path):
    flask_commands = _flask_help_commands(tmp_path)
    readme = _readme_commands()
    assert "start-all-workers" in flask_commands and "audit" in flask_commands
    assert sorted(flask_commands - readme) == [], "commands missing from the README table"
    assert sorted(readme - flask_commands) == [], "README names commands that do not exist"


def _readme_table(first_header: str) -> list[list[str]]:
    """The rows of the README table whose first header cell is `first_header`."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_where_things_are_table_names_every_blueprint_by_its_prefix_and_module(app):
    """Every blueprint with a URL prefix has a row giving that prefix and its module file,
    and every module the table names exists."""
    rows = _readme_table("URL prefix")
    named_modules = {m for row in rows for m in re.findall(r"`(dashboard/views/\w+\.py)`", row[1])}
    for module in named_modules:
        assert (ROOT / module).is_file(), f"README names {module}, which does not exist"
    for bp in app.blueprints.values():
        module = bp.import_name.replace(".", "/") + ".py"
        assert module in named_modules, f"README's where-things-are table lacks {module}"
        if bp.url_prefix:
            row = next(r for r in rows if f"`{module}`" in r[1])
            assert f"`{bp.url_prefix}" in row[0], (
                f"{module} serves {bp.url_prefix}; README: {row[0]}"
            )


def test_the_where_things_are_table_gives_each_workflow_its_file():
    rows = {row[0].strip("`"): row[1] for row in _readme_table("workflow name")}
    names = {n.strip("` ") for key in rows for n in key.split(",")}
    workflows = {
        wf.name: wf for domain in registry.domains().values() for wf in domain.workflows.values()
    }
    assert names == set(workflows), "README's workflow table and the registry differ"
    for key, files in rows.items():
        for name in (n.strip("` ") for n in key.split(",")):
            path = workflows[name].cls.__module__.replace(".", "/") + ".py"
            assert f"`{path}`" in files, f"{name} is in {path}; README says {files}"
