"""The layers hold: the workers' registry finds exactly the domains the contracts
catalogue names, nothing imports in a cycle (counting what is loaded by name with
`import_module`), and the README's command table names exactly the `flask` commands."""

from __future__ import annotations

import dataclasses
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from estuary.contracts import catalogue
from workers.temporal import registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "workers", "estuary", "temporal_gateway")


def test_the_registry_finds_exactly_the_catalogue_domains():
    assert tuple(registry.domains()) == catalogue.DOMAINS == tuple(catalogue.SPEC_MODULES)


def test_the_registry_equals_the_catalogue():
    """Each domain's workflow classes are exactly its catalogue entries, each class agreeing
    with its spec (input type, the signals, updates and queries the console sends)."""
    assert {w.name for w in registry.all_workflows()} == {w.name for w in catalogue.all_workflows()}
    for name, domain in registry.domains().items():
        assert domain.workflows, f"{name} has no workflows"
        assert list(domain.workflows) == list(catalogue.domain(name).workflows)
        assert domain.task_queue("p-") == catalogue.task_queue(name, "p-") == f"p-{name}"
        for wf in domain.workflows.values():
            assert wf.domain == name
            # In a domain's workflows.py or a module of its package (one module per workflow,
            # in sub-packages or beside workflows.py: the sandbox re-imports a run's module).
            assert wf.cls.__module__.startswith(f"workers.{name}.")
            assert wf.spec is catalogue.workflow(wf.name).spec
            assert registry.catalogue_problems(wf.cls, wf.spec) == []


def test_the_registry_refuses_classes_that_disagree_with_the_catalogue():
    payout = registry.workflow("PractitionerPayoutWorkflow")
    sweep = registry.workflow("PayoutSweepWorkflow")
    classes = {w.name: w.cls for w in registry.domain("payments").workflows.values()}

    # A class whose input type or handlers differ from its spec.
    wrong = dataclasses.replace(
        payout.spec,
        input_type=sweep.spec.input_type,
        updates=(("approve", None), ("refund", None)),
        queries=("progress", "balance"),
    )
    problems = registry.catalogue_problems(payout.cls, wrong)
    assert any(p.startswith("run takes") for p in problems), problems
    assert any("update 'approve' takes" in p for p in problems), problems
    assert "update 'refund' is in the catalogue but not on the class" in problems
    assert "query 'balance' is in the catalogue but not on the class" in problems

    # A class with no catalogue entry, and an entry with no class.
    del classes["PayoutSweepWorkflow"]
    classes["Stranger"] = sweep.cls
    with pytest.raises(registry.CatalogueMismatch) as refused:
        registry.checked_workflows("payments", classes)
    message = str(refused.value)
    assert "Stranger: a workflow class with no catalogue entry" in message
    assert "PayoutSweepWorkflow: in the catalogue, no workflow class" in message
    with pytest.raises(registry.CatalogueMismatch, match="DOMAINS does not name"):
        registry.checked_workflows("loyalty", {})


CONSOLE_PROCESS = """
import json, sys
from config import TestingConfig
from estuary_ops import create_app
from estuary.contracts import catalogue
from estuary.db import db
from estuary.models import StaffUser

PASSWORD = "correct horse battery"
app = create_app(
    TestingConfig,
    SQLALCHEMY_DATABASE_URI=sys.argv[1],
    WTF_CSRF_ENABLED=False,
    TEMPORAL_ADDRESS="127.0.0.1:9",
    TEMPORAL_CONNECT_TIMEOUT=1,
    TEMPORAL_RPC_TIMEOUT=1,
)
with app.app_context():
    db.create_all()
    user = StaffUser(email="operator@test.local", name="Operator", role="operator")
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
client = app.test_client()
client.post("/auth/login", data={"email": "operator@test.local", "password": PASSWORD})
pages = ["/workflows", *(f"/workflows/{w.name}/start" for w in catalogue.all_workflows())]
statuses = {path: client.get(path).status_code for path in pages}
refused = client.post("/workflows/PractitionerPayoutWorkflow/start", data={"practitioner_id": "x"})
statuses["POST bad payout"] = refused.status_code
statuses["POST bad payout shows the field"] = "practitioner_id" in refused.get_data(as_text=True)
# The schedules defined in code are the catalogue's too (Temporal is not there: 503).
schedules = client.get("/schedules/")
statuses["schedules"] = schedules.status_code
statuses["schedules lists the code's"] = "payments-weekly-batch-payout" in schedules.get_data(
    as_text=True
)
workers = sorted(m for m in sys.modules if m == "workers" or m.startswith("workers."))
print(json.dumps({"statuses": statuses, "workers": workers}))
"""


def test_a_console_process_never_imports_workflow_or_activity_code(tmp_path):
    """The console app, built as gunicorn builds it (`estuary_ops:create_app()`), renders the
    catalogue, every start form and the schedules page, and refuses a bad start, with no
    `workers` module loaded: it knows the workflows from the catalogue's data."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(ESTUARY_ENV="development", ESTUARY_VAR_DIR=str(tmp_path / "var"))
    out = subprocess.run(
        [sys.executable, "-c", CONSOLE_PROCESS, f"sqlite:///{tmp_path / 'console.db'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    statuses = seen.pop("statuses")
    assert statuses.pop("POST bad payout") == 422
    assert statuses.pop("POST bad payout shows the field") is True
    assert statuses.pop("schedules") == 503
    assert statuses.pop("schedules lists the code's") is True
    assert len(statuses) == 1 + len(catalogue.all_workflows())
    assert set(statuses.values()) == {200}, statuses
    assert seen["workers"] == []


def test_the_flask_commands_load_the_workers(runner):
    """The same app's command line has every package's commands (registered on first use)."""
    result = runner.invoke(args=["list-workflows", "--domain", "maintenance"])
    assert result.exit_code == 0, result.output
    assert "SecurityUpkeepWorkflow(" in result.output
    assert "workers.temporal.cli" in sys.modules


def _loaded_by_name(graph: grimp.ImportGraph) -> None:
    """Add the imports made with `import_module` to the graph: what the registry loads
    (each domain's workflow and activity modules), what the command line loads (each
    domain's commands) and what the console loads (its view modules). (The composition
    root, `estuary_ops`, also loads `dashboard` and `workers`, but nothing imports it.)"""
    for domain in catalogue.DOMAINS:
        loaded = [
            *registry.part_modules(domain, "workflows"),
            *registry.part_modules(domain, "activities"),
        ]
        for module in loaded:
            assert module in graph.modules, module
            graph.add_import(importer="workers.temporal.registry", imported=module)
        commands = f"workers.{domain}.commands"
        if commands in graph.modules:
            graph.add_import(importer="workers.temporal.cli", imported=commands)
    for module in _view_modules():
        graph.add_import(importer="dashboard.views", imported=module)


def _view_modules() -> list[str]:
    """`dashboard.views` imports each of its modules by name (one blueprint a module)."""
    return sorted(
        f"dashboard.views.{info.name}"
        for info in pkgutil.iter_modules([str(ROOT / "dashboard" / "views")])
    )


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
    assert graph.direct_import_exists(
        importer="workers.temporal.registry", imported=("workers.payments.workflows")
    )
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
